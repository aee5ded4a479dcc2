"""How float outputs and the AOA look, for QGIS and GDAL.

- A float raster (a regression's values, and the float outputs) gets a QGIS style (``.qml``): a
  pseudo-colour ramp (viridis) stretched from the 2nd to the 98th percentile of its values,
  and GDAL's sidecar (``.tif.aux.xml``) holding the statistics ``gdalinfo -stats`` shows
  (STATISTICS_MINIMUM, _MAXIMUM, _MEAN, _STDDEV, _VALID_PERCENT), so neither QGIS nor GDAL
  scans the raster for them.
- The AOA raster gets a two-entry colour table and a paletted QML: 1 inside, 0 outside.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from .atomic import write_text_atomic
from .style import RGB, qml, qml_renderer, qml_text, style_paths

# viridis at 11 even stops (matplotlib's colour map): perceptually even, colour-blind safe.
VIRIDIS: tuple[str, ...] = (
    "#440154",
    "#482475",
    "#414487",
    "#355f8d",
    "#2a788e",
    "#21918c",
    "#22a884",
    "#44bf70",
    "#7ad151",
    "#bddf26",
    "#fde725",
)
AOA_CODES = (0, 1)
AOA_LABELS = ("outside the AOA", "inside the AOA")
AOA_COLOURS: tuple[RGB, RGB] = ((215, 48, 39), (26, 152, 80))


def ramp_limits(stats: Mapping[str, Any]) -> tuple[float, float] | None:
    """(low, high) of the colour ramp: the 2nd and 98th percentiles; a constant band is
    stretched by 0.5 either side (as numpy's histogram does); None for an empty band."""
    if not stats.get("count"):
        return None
    low, high = float(stats["percentile_2"]), float(stats["percentile_98"])
    return (low - 0.5, high + 0.5) if low == high else (low, high)


def _number(value: float) -> str:
    return repr(float(value))


def ramp_qml(limits: tuple[float, float], band: int = 1, label: str = "") -> str:
    """A QGIS singleband pseudo-colour style: viridis from ``limits[0]`` to ``limits[1]``."""
    low, high = limits
    root, renderer = qml_renderer(
        "singlebandpseudocolor",
        band,
        classificationMin=_number(low),
        classificationMax=_number(high),
    )
    origin = ET.SubElement(renderer, "minMaxOrigin")
    for tag, text in (("limits", "None"), ("extent", "WholeRaster"), ("statAccuracy", "Exact")):
        ET.SubElement(origin, tag).text = text
    shader = ET.SubElement(
        ET.SubElement(renderer, "rastershader"),
        "colorrampshader",
        colorRampType="INTERPOLATED",
        classificationMode="1",
        clip="0",
        minimumValue=_number(low),
        maximumValue=_number(high),
    )
    n = len(VIRIDIS) - 1
    for i, colour in enumerate(VIRIDIS):
        value = low + (high - low) * i / n
        text = f"{value:.6g}" + (f" {label}" if label and i in (0, n) else "")
        ET.SubElement(shader, "item", alpha="255", value=_number(value), label=text, color=colour)
    return qml_text(root)


def statistics_aux_xml(bands: Sequence[Mapping[str, Any]], pixels: int) -> str:
    """GDAL's PAM sidecar with each band's statistics (what ``gdalinfo -stats`` reports)."""
    root = ET.Element("PAMDataset")
    for i, stats in enumerate(bands, start=1):
        band = ET.SubElement(root, "PAMRasterBand", band=str(i))
        if not stats.get("count"):
            continue
        metadata = ET.SubElement(band, "Metadata")
        items = {
            "STATISTICS_MAXIMUM": stats["max"],
            "STATISTICS_MEAN": stats["mean"],
            "STATISTICS_MINIMUM": stats["min"],
            "STATISTICS_STDDEV": stats["std"],
            "STATISTICS_VALID_PERCENT": 100.0 * stats["count"] / max(pixels, 1),
        }
        for key, value in items.items():
            ET.SubElement(metadata, "MDI", key=key).text = _number(value)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def write_ramp_style(
    raster: Path, bands: Sequence[Mapping[str, Any]], pixels: int, styled: int = 0, label: str = ""
) -> dict[str, Path]:
    """The QML (band ``styled``, 0-based, gives the ramp) and the statistics aux.xml."""
    paths = style_paths(raster)
    written = {"aux_xml": paths["aux_xml"]}
    write_text_atomic(paths["aux_xml"], statistics_aux_xml(bands, pixels))
    limits = ramp_limits(bands[styled]) if bands else None
    if limits is not None:
        write_text_atomic(paths["qml"], ramp_qml(limits, styled + 1, label))
        written["qml"] = paths["qml"]
    return written


def aoa_colormap(nodata: int) -> dict[int, tuple[int, int, int, int]]:
    table = {code: (*rgb, 255) for code, rgb in zip(AOA_CODES, AOA_COLOURS, strict=True)}
    table[nodata] = (0, 0, 0, 0)
    return table


def write_aoa_style(raster: Path) -> dict[str, Path]:
    """The AOA's paletted QML: 0 outside, 1 inside."""
    path = style_paths(raster)["qml"]
    write_text_atomic(path, qml(AOA_CODES, AOA_LABELS, AOA_COLOURS))
    return {"qml": path}
