"""The plugin object: registers the Processing provider (also under qgis_process)."""

from __future__ import annotations

from typing import Any

from qgis.core import QgsApplication

from .provider import WindowedClassifyProvider


class WindowedClassifyPlugin:
    def __init__(self, iface: Any) -> None:
        self.iface = iface
        self.provider: WindowedClassifyProvider | None = None

    def initProcessing(self) -> None:
        # initProcessing, not initGui: qgis_process has no GUI and calls only this.
        if self.provider is not None:  # the GUI calls initGui, which comes here too
            return
        self.provider = WindowedClassifyProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        self.initProcessing()

    def unload(self) -> None:
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
