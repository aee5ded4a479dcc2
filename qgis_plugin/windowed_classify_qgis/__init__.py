"""QGIS plugin 'Windowed classify': a Processing provider driving the windowed_classify CLI.

Importing this package imports nothing from QGIS (only ``classFactory`` does), so that the
pure client module can be tested without QGIS.
"""

from __future__ import annotations

from typing import Any


def classFactory(iface: Any) -> Any:  # QGIS looks this name up
    from .plugin import WindowedClassifyPlugin

    return WindowedClassifyPlugin(iface)
