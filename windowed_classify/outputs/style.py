"""How the classes look and what they are called, for QGIS and GDAL.

One distinct colour per class; beside ``prediction.tif``:
- ``prediction.qml``: a QGIS style (paletted renderer, one entry per code with its label),
  which QGIS applies by itself when it opens the raster;
- ``prediction.legend.csv``: code, label, colour, pixel count;
- ``prediction.tif.aux.xml``: GDAL's own sidecar with the category names and a raster
  attribute table (GeoTIFF keeps neither inside the file; GDAL writes them there too).
"""

from __future__ import annotations

import colorsys
import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from .atomic import write_text_atomic

RGB = tuple[int, int, int]

# Tableau 20 reordered: the ten strong colours first, then their light partners.
_BASE: tuple[str, ...] = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#c7c7c7",
    "#dbdb8d",
    "#9edae5",
)


def _rgb(hex_colour: str) -> RGB:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def hex_colour(rgb: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def palette(n: int) -> list[RGB]:
    """``n`` distinct colours: Tableau 20, then hues spaced by the golden angle."""
    colours = [_rgb(c) for c in _BASE[:n]]
    for i in range(n - len(colours)):
        hue = (i * 0.618033988749895) % 1.0
        light = (0.45, 0.6, 0.35)[i % 3]
        r, g, b = colorsys.hls_to_rgb(hue, light, 0.75)
        colours.append((round(r * 255), round(g * 255), round(b * 255)))
    return colours


def colormap(
    codes: Sequence[int], colours: Sequence[RGB], nodata: int
) -> dict[int, tuple[int, int, int, int]]:
    """The GeoTIFF colour table: one entry per code; the nodata code is transparent."""
    table = {int(code): (*rgb, 255) for code, rgb in zip(codes, colours, strict=True)}
    table[nodata] = (0, 0, 0, 0)
    return table


def qml_renderer(kind: str, band: int = 1, **extra: str) -> tuple[ET.Element, ET.Element]:
    """A QGIS style document and its raster renderer of ``kind`` on ``band``, to fill in."""
    root = ET.Element("qgis", version="3.28", styleCategories="Symbology")
    pipe = ET.SubElement(root, "pipe")
    attrib = {"type": kind, "band": str(band), "opacity": "1", "alphaBand": "-1"}
    renderer = ET.SubElement(pipe, "rasterrenderer", attrib | extra | {"nodataColor": ""})
    ET.SubElement(renderer, "rasterTransparency")
    return root, renderer


def qml_text(root: ET.Element) -> str:
    """The style document as QGIS writes it, its pipe ended by the default filters."""
    pipe = root.find("pipe")
    assert pipe is not None
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(pipe, "huesaturation", saturation="0", grayscaleMode="0", colorizeOn="0")
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(root, "blendMode").text = "0"
    ET.indent(root)
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(
        root, encoding="unicode"
    )


def qml(codes: Sequence[int], labels: Sequence[Any], colours: Sequence[RGB]) -> str:
    """A QGIS layer style: paletted renderer on band 1, one entry per code with its label."""
    root, renderer = qml_renderer("paletted")
    entries = ET.SubElement(renderer, "colorPalette")
    for code, label, rgb in zip(codes, labels, colours, strict=True):
        ET.SubElement(
            entries,
            "paletteEntry",
            value=str(code),
            color=hex_colour(rgb),
            label=str(label),
            alpha="255",
        )
    return qml_text(root)


def legend_csv(
    codes: Sequence[int], labels: Sequence[Any], colours: Sequence[RGB], counts: Sequence[int]
) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["code", "label", "colour", "pixel_count"])
    for code, label, rgb, n in zip(codes, labels, colours, counts, strict=True):
        writer.writerow([code, label, hex_colour(rgb), int(n)])
    return buffer.getvalue()


# GDAL's raster attribute table codes (gdal.h: GDALRATFieldType, GDALRATFieldUsage).
_GFT_INTEGER, _GFT_STRING = 0, 2
_GFU_GENERIC, _GFU_PIXEL_COUNT, _GFU_NAME, _GFU_MIN_MAX = 0, 1, 2, 5
_GFU_RED, _GFU_GREEN, _GFU_BLUE, _GFU_ALPHA = 6, 7, 8, 9


def aux_xml(
    codes: Sequence[int], labels: Sequence[Any], colours: Sequence[RGB], counts: Sequence[int]
) -> str:
    """GDAL's PAM sidecar for band 1: category names and a thematic attribute table."""
    root = ET.Element("PAMDataset")
    band = ET.SubElement(root, "PAMRasterBand", band="1")
    named = dict(zip(codes, labels, strict=True))
    if named and min(named) >= 0 and max(named) < 1 << 16:  # GDAL's list is by value, 0..max
        names = ET.SubElement(band, "CategoryNames")
        for value in range(max(named) + 1):
            ET.SubElement(names, "Category").text = str(named.get(value, ""))
    rat = ET.SubElement(band, "GDALRasterAttributeTable", tableType="thematic")
    fields = [
        ("Value", _GFT_INTEGER, _GFU_MIN_MAX),
        ("Count", _GFT_INTEGER, _GFU_PIXEL_COUNT),
        ("Class", _GFT_STRING, _GFU_NAME),
        ("Red", _GFT_INTEGER, _GFU_RED),
        ("Green", _GFT_INTEGER, _GFU_GREEN),
        ("Blue", _GFT_INTEGER, _GFU_BLUE),
        ("Alpha", _GFT_INTEGER, _GFU_ALPHA),
    ]
    for i, (name, kind, usage) in enumerate(fields):
        defn = ET.SubElement(rat, "FieldDefn", index=str(i))
        ET.SubElement(defn, "Name").text = name
        ET.SubElement(defn, "Type").text = str(kind)
        ET.SubElement(defn, "Usage").text = str(usage)
    for i, (code, label, rgb, n) in enumerate(zip(codes, labels, colours, counts, strict=True)):
        row = ET.SubElement(rat, "Row", index=str(i))
        for value in (code, int(n), label, *rgb, 255):
            ET.SubElement(row, "F").text = str(value)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def style_paths(output: Path) -> dict[str, Path]:
    return {
        "qml": output.with_suffix(".qml"),
        "legend_csv": output.with_name(output.stem + ".legend.csv"),
        "aux_xml": output.with_name(output.name + ".aux.xml"),
    }


def write_style(
    output: Path,
    codes: Sequence[int],
    labels: Sequence[Any],
    colours: Sequence[RGB],
    counts: Sequence[int],
) -> dict[str, Path]:
    """The three sidecars of the classified raster; returns their paths by kind."""
    paths = style_paths(output)
    write_text_atomic(paths["qml"], qml(codes, labels, colours))
    write_text_atomic(paths["legend_csv"], legend_csv(codes, labels, colours, counts))
    write_text_atomic(paths["aux_xml"], aux_xml(codes, labels, colours, counts))
    return paths
