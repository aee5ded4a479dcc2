"""The Processing provider 'Windowed classify' and its one setting: the tool's interpreter."""

from __future__ import annotations

import os
from pathlib import Path

from qgis.core import Qgis, QgsMessageLog, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from . import client

PROVIDER_ID = "windowed_classify"
PROVIDER_NAME = "Windowed classify"
# Also the QSettings key: Processing/Configuration/WINDOWED_CLASSIFY_PYTHON
PYTHON_SETTING = "WINDOWED_CLASSIFY_PYTHON"
ICON = Path(__file__).with_name("icon.svg")

_checked: dict[tuple[str, float], str] = {}  # (python, mtime) -> version: validate once


def _validate_python(value: str) -> None:
    """The setting's check, run when the Processing options are saved: the interpreter must
    start a tool recent enough; its version goes to the message log (the 'test')."""
    if not value or not str(value).strip():
        return
    try:
        python = client.python_in(value)
        key = (str(python), python.stat().st_mtime)
    except (client.ClientError, OSError) as exc:
        raise ValueError(str(exc)) from None
    if key not in _checked:
        env = client.tool_environment(os.environ)
        try:
            _checked[key] = client.tool_version(python, env)
        except client.ClientError as exc:
            raise ValueError(str(exc)) from None
        QgsMessageLog.logMessage(f"{python}: {_checked[key]}", PROVIDER_NAME, Qgis.Info)


def configured_python() -> str | None:
    """The interpreter set in Processing options (None before the provider is loaded)."""
    try:
        from processing.core.ProcessingConfig import ProcessingConfig
    except ImportError:  # Processing plugin absent: only the environment variable
        return None
    value = ProcessingConfig.getSetting(PYTHON_SETTING)
    return str(value) if value else None


class WindowedClassifyProvider(QgsProcessingProvider):
    def id(self) -> str:
        return PROVIDER_ID

    def name(self) -> str:
        return PROVIDER_NAME

    def longName(self) -> str:
        return "Windowed classify (windowed_classify command-line tool)"

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def svgIconPath(self) -> str:
        return str(ICON)

    def load(self) -> bool:
        try:
            from processing.core.ProcessingConfig import ProcessingConfig, Setting
        except ImportError:
            ProcessingConfig = None
        if ProcessingConfig is not None:
            ProcessingConfig.settingIcons[self.name()] = self.icon()
            ProcessingConfig.addSetting(
                Setting(
                    self.name(),
                    PYTHON_SETTING,
                    "Python interpreter of windowed_classify (venv/bin/python)",
                    "",
                    valuetype=Setting.FILE,
                    validator=_validate_python,
                )
            )
            ProcessingConfig.readSettings()
        self.refreshAlgorithms()
        return True

    def unload(self) -> None:
        try:
            from processing.core.ProcessingConfig import ProcessingConfig
        except ImportError:
            return
        if PYTHON_SETTING in ProcessingConfig.settings:
            ProcessingConfig.removeSetting(PYTHON_SETTING)

    def loadAlgorithms(self) -> None:
        from .accuracy import AssessAlgorithm, DesignAlgorithm
        from .algorithms import (
            CheckAlgorithm,
            ClassifyAlgorithm,
            SampleAlgorithm,
            TestInterpreterAlgorithm,
        )

        for alg in (
            ClassifyAlgorithm,
            CheckAlgorithm,
            SampleAlgorithm,
            DesignAlgorithm,
            AssessAlgorithm,
            TestInterpreterAlgorithm,
        ):
            self.addAlgorithm(alg())

    def supportedOutputRasterLayerExtensions(self) -> list[str]:
        return ["tif", "tiff"]  # the tool writes GeoTIFF only

    def defaultRasterFileExtension(self) -> str:
        return "tif"
