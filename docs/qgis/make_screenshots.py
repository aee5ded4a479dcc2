"""Screenshots for the QGIS docs page, taken in a real QGIS under Xvfb (make_screenshots.sh):

    qgis.bin --nologo --noversioncheck --code docs/qgis/make_screenshots.py

Opens 'Classify raster stack' filled in (classify_dialog.png), presses Run as a user would,
waits for the run to end and the result to load through Processing's own post-processing
(classify_log.png), then shows the styled classes in the map canvas with their names in the
Layers panel (classified_map.png), and the Processing option that names the tool's
interpreter (processing_options.png). Environment: WC_SHOTS_DATA (the folder made by
tests/qgis/stack_tools.py make), WC_SHOTS_OUT (where the PNGs go), WC_SHOTS_PYTHON (the
interpreter shown in the options).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import processing
from qgis.core import QgsApplication, QgsProject
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtWidgets import QApplication, QDialog, QTabWidget, QWidget
from qgis.utils import iface

DATA = Path(os.environ["WC_SHOTS_DATA"])
OUT = Path(os.environ["WC_SHOTS_OUT"])
RESULT = DATA / "results" / "prediction.tif"
MAX_BYTES = 300_000
state: dict = {}


def save(widget, name: str) -> None:
    """A PNG of the widget; scaled down until it is under 300 KB."""
    pixmap = widget.grab()
    path = OUT / name
    scale = 1.0
    while True:
        shot = (
            pixmap
            if scale == 1.0
            else pixmap.scaledToWidth(int(pixmap.width() * scale), Qt.SmoothTransformation)
        )
        shot.save(str(path), "PNG", 9)
        if path.stat().st_size < MAX_BYTES or scale < 0.5:
            break
        scale -= 0.1
    print(f"wrote {path} ({shot.width()} x {shot.height()}, {path.stat().st_size} bytes)")


def later(ms: int, fn) -> None:
    QTimer.singleShot(ms, fn)


def open_dialog() -> None:
    iface.mainWindow().resize(1240, 780)
    params = {
        "FOLDER": str(DATA / "covariates"),
        "MODEL": str(DATA / "model.pkl"),
        "NODATA_VALUES": "-9999",
        "THRESHOLD": 0,
        "OUTPUT": str(RESULT),
    }
    dialog = processing.createAlgorithmDialog("windowed_classify:classify", params)
    dialog.resize(900, 700)
    dialog.show()
    state["dialog"] = dialog
    later(2000, shoot_dialog)


def shoot_dialog() -> None:
    save(state["dialog"], "classify_dialog.png")
    state["started"] = time.monotonic()
    state["dialog"].runAlgorithm()  # the Run button
    later(1000, wait_for_result)


def wait_for_result() -> None:
    layers = QgsProject.instance().mapLayersByName("prediction")
    if not layers:
        if time.monotonic() - state["started"] > 300:
            print("the run did not finish in 300 s", file=sys.stderr)
            QgsApplication.exit(1)
            return
        later(500, wait_for_result)
        return
    state["layer"] = layers[0]
    later(1500, shoot_log)


def shoot_log() -> None:
    dialog = state["dialog"]
    tabs = dialog.findChild(QTabWidget)
    if tabs is not None:
        tabs.setCurrentIndex(tabs.count() - 1)  # the Log tab
    later(800, lambda: (save(dialog, "classify_log.png"), dialog.close(), later(500, show_map)))


def show_map() -> None:
    canvas = iface.mapCanvas()
    canvas.setExtent(state["layer"].extent())
    canvas.refresh()
    later(3000, shoot_map)


def shoot_map() -> None:
    save(iface.mainWindow(), "classified_map.png")
    later(200, open_options)


def open_options() -> None:
    from processing.core.ProcessingConfig import ProcessingConfig

    # what a user types there once (this run took it from WINDOWED_CLASSIFY_PYTHON)
    ProcessingConfig.setSettingValue("WINDOWED_CLASSIFY_PYTHON", os.environ["WC_SHOTS_PYTHON"])
    later(2500, shoot_options)  # the options dialog is modal: this timer still fires
    iface.showOptionsDialog(iface.mainWindow(), "processingOptions")
    later(500, finish)


def shoot_options() -> None:
    dialog = next(
        (w for w in QApplication.topLevelWidgets() if isinstance(w, QDialog) and w.isVisible()),
        None,
    )
    if dialog is None:
        print("no options dialog", file=sys.stderr)
        return
    page = dialog.findChild(QWidget, "processingOptions")
    if page is not None:  # filter Processing's settings tree down to the provider's group
        page.config_widget.textChanged("windowed_classify")
    later(800, lambda: (save(dialog, "processing_options.png"), dialog.reject()))


def finish() -> None:
    QgsProject.instance().setDirty(False)
    print("screenshots done")
    QgsApplication.exit(0)


later(4000, open_dialog)
