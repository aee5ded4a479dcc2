"""A class map (or a strata raster) as ``design`` and ``assess`` read it: its grid, nodata
and class names, the area of its pixels, counts per stratum and class streamed in bands of
rows, and its codes under points. Nothing holds more than a band of rows of the map.

Class names: the ``<map>.legend.csv`` a run writes beside its map (code, label, ...), else
the category names (or the raster attribute table's name column) of GDAL's
``<map>.aux.xml``; codes without a name are named by their code as text.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window

from ..errors import InputError
from ..inputs.grid import Grid, crs_text, grid_differences, same_grid
from ..inputs.pixels import block_groups
from ..outputs.style import style_paths

GEODESIC_HINT = 'pip install "windowed_classify[geodesic]"'
BAND_PIXELS = 1 << 21  # pixels per band of rows read at once (about 2 million)
CACHE_BYTES = 16 << 20  # GDAL's block cache while a map streams, at the least
_GFU_NAME, _GFU_MIN_MAX = 2, 5  # GDAL raster attribute table field usages


@dataclass(frozen=True)
class ClassRaster:
    path: Path
    grid: Grid
    dtype: str
    nodata: float | None
    block: tuple[int, int]
    names: dict[int, str]  # code -> name, from the legend (empty: codes name themselves)
    what: str  # "map", "strata raster" (for messages)

    def name(self, code: int) -> str:
        return self.names.get(int(code), str(int(code)))


def open_class_raster(path: str | Path, what: str = "map") -> ClassRaster:
    """Open an integer raster of class (or stratum) codes; band 1 is read."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found: {path}")
    try:
        with rasterio.open(path) as ds:
            grid = Grid(ds.crs, ds.transform, ds.width, ds.height)
            dtype, nodata = ds.dtypes[0], ds.nodata
            block = (int(ds.block_shapes[0][0]), int(ds.block_shapes[0][1]))
    except RasterioError as exc:
        raise InputError(f"cannot open the {what} {path}: {exc}") from None
    if not np.issubdtype(np.dtype(dtype), np.integer):
        raise InputError(
            f"the {what} {path} holds {dtype} values: it must hold integer class codes"
        )
    return ClassRaster(path, grid, dtype, nodata, block, class_names(path), what)


def class_names(path: Path) -> dict[int, str]:
    """code -> class name from the map's legend sidecars (none: {})."""
    legend = style_paths(path)["legend_csv"]
    if legend.is_file():
        return _legend_names(legend)
    aux = style_paths(path)["aux_xml"]
    if aux.is_file():
        return _aux_names(aux)
    return {}


def _legend_names(path: Path) -> dict[int, str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
        names = {int(row["code"]): str(row["label"]) for row in rows}
    except (OSError, KeyError, ValueError, csv.Error) as exc:
        raise InputError(f"cannot read the legend {path} (code,label,...): {exc}") from None
    return _unique(names, path)


def _aux_names(path: Path) -> dict[int, str]:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    band = next((b for b in root.iter("PAMRasterBand") if b.get("band", "1") == "1"), None)
    if band is None:
        return {}
    categories = band.find("CategoryNames")
    if categories is not None:
        names = {i: (c.text or "") for i, c in enumerate(categories.findall("Category"))}
        return _unique({k: v for k, v in names.items() if v}, path)
    rat = band.find("GDALRasterAttributeTable")
    if rat is None:
        return {}
    usage = {int(d.findtext("Usage") or 0): int(d.get("index", "0")) for d in rat.iter("FieldDefn")}
    if _GFU_NAME not in usage or _GFU_MIN_MAX not in usage:
        return {}
    names = {}
    for row in rat.iter("Row"):
        values = [f.text or "" for f in row.findall("F")]
        try:
            names[int(float(values[usage[_GFU_MIN_MAX]]))] = values[usage[_GFU_NAME]]
        except (IndexError, ValueError):
            continue
    return _unique({k: v for k, v in names.items() if v}, path)


def _unique(names: dict[int, str], path: Path) -> dict[int, str]:
    seen: dict[str, int] = {}
    for code, name in sorted(names.items()):
        if name in seen:
            raise InputError(
                f"{path} names two classes {name!r} (codes {seen[name]} and {code}): class "
                "names must be unique"
            )
        seen[name] = code
    return names


def check_same_grid(ref: ClassRaster, other: ClassRaster) -> None:
    if not same_grid(ref.grid, other.grid):
        raise InputError(
            f"the {other.what} {other.path} is not on the grid of the {ref.what} {ref.path}: "
            + "; ".join(grid_differences(ref.grid, other.grid))
        )


# ----------------------------------------------------------------------------- pixel areas


@dataclass(frozen=True)
class PixelAreas:
    constant: float | None  # m^2 of every pixel (projected)
    rows: np.ndarray | None  # m^2 of a pixel in each row (geographic)
    how: str  # in words, for the report

    @property
    def known(self) -> bool:
        return self.constant is not None or self.rows is not None


def pixel_areas(raster: ClassRaster) -> PixelAreas:
    """Pixel areas from the CRS: projected -> one area (transform x the linear unit);
    geographic -> one per row on the ellipsoid (pyproj, the 'geodesic' extra); no CRS ->
    unknown (areas are then given in pixels only)."""
    from ..accuracy.areas import geographic_row_areas, projected_pixel_area

    grid = raster.grid
    crs: Any = grid.crs
    if crs is None:
        return PixelAreas(None, None, "unknown: the map has no CRS")
    if crs.is_geographic:
        try:
            import pyproj
        except ImportError:
            raise InputError(
                f"the {raster.what} {raster.path} is in a geographic CRS ({crs_text(crs)}): its "
                f"pixel areas are computed on the ellipsoid with pyproj: {GEODESIC_HINT}"
            ) from None
        pcrs = pyproj.CRS.from_wkt(crs.to_wkt())
        factor = math.degrees(pcrs.axis_info[0].unit_conversion_factor or math.radians(1))
        try:
            rows = geographic_row_areas(grid.transform, grid.height, pcrs.get_geod(), factor)
        except ValueError as exc:
            raise InputError(f"the {raster.what} {raster.path}: {exc}") from None
        ellipsoid = pcrs.ellipsoid.name if pcrs.ellipsoid is not None else "its ellipsoid"
        return PixelAreas(None, rows, f"geographic: ellipsoidal area per row ({ellipsoid})")
    metres = _metres_per_unit(crs)
    area = projected_pixel_area(grid.transform, metres)
    return PixelAreas(area, None, f"projected: {area:.10g} m2 per pixel")


def _metres_per_unit(crs: Any) -> float:
    try:
        return float(crs.linear_units_factor[1])
    except AttributeError:  # rasterio before 1.3 has no linear_units_factor
        units = str(getattr(crs, "linear_units", "metre")).lower()
        if units in ("metre", "meter", "m", "metres", "meters"):
            return 1.0
        raise InputError(f"unknown linear unit {units!r} of {crs_text(crs)}") from None


# ----------------------------------------------------------------------------- streaming


def row_bands(grid: Grid, block: tuple[int, int]) -> list[Window]:
    """Full-width bands of rows, whole block rows when they fit BAND_PIXELS (each block is
    then decoded once), in row-major order."""
    per_row = max(grid.width, 1)
    rows = max(1, BAND_PIXELS // per_row)
    if rows >= block[0]:
        rows -= rows % max(block[0], 1)
    return [
        Window(0, r, grid.width, min(rows, grid.height - r)) for r in range(0, grid.height, rows)
    ]


def valid_mask(values: np.ndarray, nodata: float | None) -> np.ndarray:
    if nodata is None or (isinstance(nodata, float) and math.isnan(nodata)):
        return np.ones(values.shape, dtype=bool)
    return values != nodata


def stream(
    classes: ClassRaster, strata: ClassRaster | None
) -> Iterator[tuple[Window, np.ndarray, np.ndarray, np.ndarray]]:
    """(band, class codes, stratum codes, valid) per band of rows, row-major, in the
    rasters' own dtypes; a pixel is valid when neither raster has nodata there. Without a
    strata raster the strata are the classes (the same array)."""
    block = classes.block if strata is None else (max(classes.block[0], strata.block[0]), 0)
    # A block row is read by one band or, when a band holds fewer rows, by the next ones too:
    # the cache holds one block row of each raster, no more (more would only grow the peak)
    rasters = [classes] if strata is None else [classes, strata]
    held = sum(r.block[0] * r.grid.width * np.dtype(r.dtype).itemsize for r in rasters)
    env = rasterio.Env(GDAL_CACHEMAX=max(CACHE_BYTES, 2 * held))
    try:
        with env, rasterio.open(classes.path) as cds:
            sds = rasterio.open(strata.path) if strata is not None else None
            try:
                for window in row_bands(classes.grid, block):
                    c = cds.read(1, window=window)
                    valid = valid_mask(c, classes.nodata)
                    if sds is not None and strata is not None:
                        s = sds.read(1, window=window)
                        valid &= valid_mask(s, strata.nodata)
                        yield window, c, s, valid
                    else:
                        yield window, c, c, valid
            finally:
                if sds is not None:
                    sds.close()
    except RasterioError as exc:
        raise InputError(f"cannot read the {classes.what} {classes.path}: {exc}") from None


@dataclass
class Tally:
    """Valid pixels (and their area, m^2) per (stratum code, class code)."""

    pixels: dict[tuple[int, int], int]
    area_m2: dict[tuple[int, int], float]

    def by_stratum(self) -> tuple[dict[int, int], dict[int, float]]:
        return _margin(self.pixels, 0), _margin(self.area_m2, 0)

    def by_class(self) -> tuple[dict[int, int], dict[int, float]]:
        return _margin(self.pixels, 1), _margin(self.area_m2, 1)


def _margin(table: dict[tuple[int, int], Any], axis: int) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for key, value in table.items():
        out[key[axis]] = out.get(key[axis], 0) + value
    return out


def tally(classes: ClassRaster, strata: ClassRaster | None, areas: PixelAreas) -> Tally:
    """Stream the rasters once: valid pixels and their area per (stratum, class)."""
    pixels: dict[tuple[int, int], int] = {}
    area: dict[tuple[int, int], float] = {}
    for window, c, s, valid in stream(classes, strata):
        cv, sv = c[valid], s[valid]
        if not cv.size:
            continue
        keys, inverse = pairs_of(sv if strata is not None else None, cv)
        counts = np.bincount(inverse, minlength=len(keys))
        weights: np.ndarray
        if areas.rows is not None:
            r0, h, w = int(window.row_off), int(window.height), int(window.width)
            per_pixel = np.repeat(areas.rows[r0 : r0 + h], w).reshape(h, w)[valid]
            weights = np.bincount(inverse, weights=per_pixel, minlength=len(keys))
        else:
            weights = counts * (areas.constant or 0.0)
        for (sc, cc), n, a in zip(keys, counts, weights, strict=True):
            key = (int(sc), int(cc))
            pixels[key] = pixels.get(key, 0) + int(n)
            area[key] = area.get(key, 0.0) + float(a)
    return Tally(pixels, area)


def pairs_of(s: np.ndarray | None, c: np.ndarray) -> tuple[list[tuple[int, int]], np.ndarray]:
    """The distinct (stratum, class) pairs of a band's valid pixels and each pixel's index
    among them; ``s`` None: the strata are the classes."""
    lo_c, span_c = int(c.min()), int(c.max()) - int(c.min()) + 1
    lo_s, span_s = (0, 1) if s is None else (int(s.min()), int(s.max()) - int(s.min()) + 1)
    span = span_s * span_c
    if span <= 1 << 20:  # small codes (8 and 16 bits): count in int32, do not sort
        key = c.astype(np.int32)
        key -= lo_c
        if s is not None:
            key += (s.astype(np.int32) - lo_s) * span_c
        counts = np.bincount(key, minlength=span)
        present = np.flatnonzero(counts)
        index = np.full(span, -1, dtype=np.int32)
        index[present] = np.arange(len(present), dtype=np.int32)
        pairs = [(int(v) // span_c + lo_s, int(v) % span_c + lo_c) for v in present]
        if s is None:
            pairs = [(cc, cc) for _, cc in pairs]
        return pairs, index[key]
    if s is None:
        values, inverse = np.unique(c, return_inverse=True)
        return [(int(v), int(v)) for v in values], inverse.ravel()
    values, inverse = np.unique(
        np.stack([s.astype(np.int64), c.astype(np.int64)], axis=1), axis=0, return_inverse=True
    )
    return [(int(a), int(b)) for a, b in values], inverse.ravel()


def codes_at(raster: ClassRaster, rows: np.ndarray, cols: np.ndarray) -> tuple[Any, Any]:
    """(codes int64, valid) of the raster at pixels (rows, cols); off the grid: not valid.
    Only the blocks holding points are read, each once."""
    codes = np.zeros(len(rows), dtype=np.int64)
    valid = np.zeros(len(rows), dtype=bool)
    try:
        with rasterio.open(raster.path) as ds:
            for members, window in block_groups(raster.grid, rows, cols, raster.block):
                data = ds.read(1, window=window)
                r = rows[members] - int(window.row_off)
                c = cols[members] - int(window.col_off)
                values = data[r, c]
                codes[members] = values.astype(np.int64)
                valid[members] = valid_mask(values, raster.nodata)
    except RasterioError as exc:
        raise InputError(f"cannot read the {raster.what} {raster.path}: {exc}") from None
    return codes, valid
