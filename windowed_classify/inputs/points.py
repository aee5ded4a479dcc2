"""Points users bring (training points for ``sample``, reference points for ``assess``), read
into one table whose ``x`` and ``y`` are in the rasters' CRS.

- A CSV (no extra needed): coordinates in ``x``/``y``, ``lon``/``lat``, ``longitude``/
  ``latitude`` or ``easting``/``northing`` (any case); in the rasters' CRS, or in the CRS
  given with ``--points-crs``. Every column is kept as written (text).
- A vector file (the ``vector`` extra: geopandas + pyogrio): one layer, named with ``--layer``
  when the file has several (never a silent first layer). Its CRS is its own; ``--points-crs``
  gives the CRS of a layer that has none (a shapefile without .prj). Points give a row each;
  multipoints a row per point, with ``feature_id``; polygons a row per pixel whose centre is
  inside (rasterize semantics, see ``polygons``), or one row at their representative point
  (``--polygons centroid``), with ``polygon_id``. Ids are the feature's 0-based position in
  the layer.
- The output's ``x`` and ``y`` are always in the rasters' CRS. An input column called ``x``
  or ``y`` that does not hold them (a CSV's x/y in another CRS, a vector's attributes) is kept
  as ``x_input`` / ``y_input``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from .grid import Grid, crs_text
from .tables import read_csv_text

log = logging.getLogger(__name__)

CSV_SUFFIXES = (".csv", ".txt")
COORDINATE_PAIRS = (("x", "y"), ("lon", "lat"), ("longitude", "latitude"), ("easting", "northing"))
POLYGON_MODES = ("pixels", "centroid")
VECTOR_HINT = (
    'reading points from a vector file needs geopandas and pyogrio: pip install "windowed_classify'
    "[vector]\" (or give a CSV with x and y columns in the rasters' CRS)"
)
RENAMED = {"x": "x_input", "y": "y_input"}
_KINDS = {
    "Point": "points",
    "MultiPoint": "multipoints",
    "Polygon": "polygons",
    "MultiPolygon": "polygons",
}


@dataclass
class PointTable:
    """The rows to write (input columns, ids, x and y as text) and their coordinates in the
    rasters' CRS; ``pixels`` holds the exact (rows, cols) when rows are polygon pixels."""

    frame: pd.DataFrame
    xs: np.ndarray
    ys: np.ndarray
    kind: str  # "csv", "points", "multipoints", "polygons" (pixels) or "centroids"
    where: str  # the file (and layer) for messages
    pixels: tuple[np.ndarray, np.ndarray] | None = None
    crs_known: bool = True  # False: coordinates taken in the rasters' CRS for lack of one


def read_points(
    path: str | Path,
    grid: Grid,
    *,
    layer: str | None = None,
    points_crs: str | None = None,
    polygons: str = "pixels",
    reserved: Sequence[str] = (),
    strict: bool = False,
    accept_polygons: bool = True,
    what: str = "points file",
) -> PointTable:
    """Read a points file onto ``grid``; one clear InputError for anything wrong with it.

    ``reserved``: column names the caller adds (layer columns): an input column with one of
    them is an error. ``strict`` (assess): coordinates whose CRS cannot be known (they look
    like degrees on a projected grid; a CRS on the points but none on the grid) are errors,
    not warnings. ``accept_polygons`` false: polygons are an error (assess needs points).
    """
    if polygons not in POLYGON_MODES:
        raise InputError(f"--polygons {polygons!r}: choose one of {', '.join(POLYGON_MODES)}")
    path, layer = split_layer(Path(path), layer)
    if not path.is_file():
        raise InputError(f"{what} not found: {path}")
    source_crs = _parse_crs(points_crs) if points_crs is not None else None
    if source_crs is not None and grid.crs is None:
        raise InputError(
            f"--points-crs {points_crs}: the rasters have no CRS, so the points of {path} cannot "
            "be reprojected onto them; give coordinates in the rasters' own units"
        )
    if path.suffix.lower() in CSV_SUFFIXES:
        if layer is not None:
            raise InputError(f"--layer {layer}: {path} is a CSV, which has no layers")
        table = _read_csv(path, grid, source_crs, points_crs, strict, what)
    else:
        table = _read_vector(
            path, grid, layer, source_crs, points_crs, polygons, strict, accept_polygons, what
        )
    clash = [c for c in table.frame.columns if c in set(reserved)]
    if clash:
        raise InputError(
            f"{what} {table.where}: column(s) {', '.join(map(repr, clash))} have the name of a "
            "layer, whose values would replace them; rename them, or put a prefix before the "
            "layer columns with --prefix"
        )
    return table


def split_layer(path: Path, layer: str | None) -> tuple[Path, str | None]:
    """``file.gpkg|layername=NAME`` (QGIS) or ``file.gpkg:NAME`` -> (file, NAME), when the
    text as a whole is not a file; a layer given both ways must agree."""
    if path.exists():
        return path, layer
    text = str(path)
    found: tuple[str, str] | None = None
    if "|layername=" in text:
        head, _, tail = text.partition("|layername=")
        found = head, tail.split("|")[0]
    elif ":" in text:
        head, _, tail = text.rpartition(":")
        if head and tail and Path(head).is_file():
            found = head, tail
    if found is None:
        return path, layer
    if layer is not None and layer != found[1]:
        raise InputError(f"{path}: names layer {found[1]!r} but --layer is {layer!r}")
    return Path(found[0]), found[1]


# ----------------------------------------------------------------------------- CRS


def _parse_crs(text: str) -> Any:
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        return CRS.from_user_input(text)
    except CRSError as exc:
        raise InputError(f"--points-crs {text!r} is not a CRS GDAL knows: {exc}") from None


def _reproject(xs: np.ndarray, ys: np.ndarray, source: Any, grid: Grid) -> tuple[Any, Any]:
    from rasterio.warp import transform

    if source == grid.crs:
        return xs, ys
    tx, ty = transform(source, grid.crs, xs.tolist(), ys.tolist())
    return np.asarray(tx, dtype=np.float64), np.asarray(ty, dtype=np.float64)


def looks_like_degrees(grid: Grid, xs: np.ndarray, ys: np.ndarray) -> bool:
    """Coordinates all within +-180/+-90 on a projected grid whose own extent is not: the
    points are most likely longitudes and latitudes taken for the grid's units."""
    crs: Any = grid.crs
    if crs is None or not getattr(crs, "is_projected", False) or not len(xs):
        return False
    if not (np.all(np.abs(xs) <= 180) and np.all(np.abs(ys) <= 90)):
        return False
    t: Any = grid.transform
    corners = [
        (t.a * c + t.b * r + t.c, t.d * c + t.e * r + t.f)
        for c in (0, grid.width)
        for r in (0, grid.height)
    ]
    return not all(abs(x) <= 180 and abs(y) <= 90 for x, y in corners)


def _unknown_crs(message: str, strict: bool) -> None:
    if strict:
        raise InputError(message)
    log.warning("%s", message)


def _degrees_message(where: str, grid: Grid) -> str:
    return (
        f"the coordinates of {where} look like longitudes and latitudes (all within +-180 and "
        f"+-90) but are taken in the rasters' CRS ({crs_text(grid.crs)}), where they fall off "
        "the grid: give their CRS with --points-crs EPSG:4326 to have them reprojected"
    )


# ----------------------------------------------------------------------------- CSV


def coordinate_columns(columns: Sequence[str], where: str) -> tuple[str, str]:
    """The CSV's coordinate columns: one pair of x/y, lon/lat, longitude/latitude or
    easting/northing (case-insensitive); none or two pairs are an error naming them."""
    by_name: dict[str, list[str]] = {}
    for c in columns:
        by_name.setdefault(str(c).strip().lower(), []).append(str(c))
    for name, found in by_name.items():
        if len(found) > 1 and name in {n for pair in COORDINATE_PAIRS for n in pair}:
            raise InputError(
                f"points file {where} has {len(found)} columns named {name!r} "
                f"({', '.join(map(repr, found))}): which holds the coordinates is ambiguous; "
                "rename all but one"
            )
    pairs = [
        (by_name[a][0], by_name[b][0]) for a, b in COORDINATE_PAIRS if a in by_name and b in by_name
    ]
    if len(pairs) > 1:
        raise InputError(
            f"points file {where} has {len(pairs)} pairs of coordinate columns ("
            + ", ".join(f"{a!r}/{b!r}" for a, b in pairs)
            + "): which holds the points is ambiguous; keep one pair, or rename the others"
        )
    if pairs:
        return pairs[0]
    halves = [
        f"{by_name[a][0]!r} but no {b!r}" if a in by_name else f"{by_name[b][0]!r} but no {a!r}"
        for a, b in COORDINATE_PAIRS
        if (a in by_name) != (b in by_name)
    ]
    raise InputError(
        f"points file {where} has no coordinate columns: it needs x and y, lon and lat, "
        "longitude and latitude, or easting and northing (any case), in the rasters' CRS or in "
        "the CRS given with --points-crs (e.g. --points-crs EPSG:4326 for lon/lat)"
        + (f"; it has {', '.join(halves)}" if halves else "")
        + f" (its columns: {', '.join(map(str, columns))})"
    )


def _numbers(frame: pd.DataFrame, column: str, where: str) -> np.ndarray:
    text = frame[column].str.strip()
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        raise InputError(
            f"points file {where}, data row {i + 1}: {column} = {frame[column].iloc[i]!r} is not "
            f"a number ({bad.size} such row(s))"
        )
    return values


def _read_csv(
    path: Path, grid: Grid, source: Any, points_crs: str | None, strict: bool, what: str
) -> PointTable:
    frame = read_csv_text(path, what)
    cx, cy = coordinate_columns(list(frame.columns), str(path))
    xs, ys = _numbers(frame, cx, str(path)), _numbers(frame, cy, str(path))
    same_crs = source is None or source == grid.crs
    if source is None:
        geographic_names = cx.lower() in ("lon", "longitude")
        if looks_like_degrees(grid, xs, ys):
            _unknown_crs(_degrees_message(str(path), grid), strict)
        elif geographic_names and getattr(grid.crs, "is_projected", False):
            log.warning(
                "points file %s: columns %r/%r are taken in the rasters' CRS (%s); if they hold "
                "longitudes and latitudes, give --points-crs EPSG:4326",
                path,
                cx,
                cy,
                crs_text(grid.crs),
            )
    else:
        xs, ys = _reproject(xs, ys, source, grid)
        log.info("points of %s reprojected from %s to %s", path, points_crs, crs_text(grid.crs))
    if same_crs and (cx, cy) == ("x", "y"):
        return PointTable(frame, xs, ys, "csv", str(path), crs_known=source is not None)
    out = _set_xy(frame, xs, ys, str(path))
    return PointTable(out, xs, ys, "csv", str(path), crs_known=source is not None)


def _set_xy(frame: pd.DataFrame, xs: np.ndarray, ys: np.ndarray, where: str) -> pd.DataFrame:
    """``frame`` with ``x`` and ``y`` (text, the rasters' CRS) last; input columns called x or
    y are kept as x_input / y_input."""
    taken = [c for c in RENAMED if c in frame.columns]
    if taken:
        twice = [RENAMED[c] for c in taken if RENAMED[c] in frame.columns]
        if twice:
            raise InputError(
                f"points file {where}: its column(s) {', '.join(map(repr, taken))} would be kept "
                f"as {', '.join(map(repr, twice))}, which it has too; rename them"
            )
        frame = frame.rename(columns={c: RENAMED[c] for c in taken})
        log.info(
            "points file %s: its column(s) %s are kept as %s (x and y are written in the "
            "rasters' CRS)",
            where,
            ", ".join(taken),
            ", ".join(RENAMED[c] for c in taken),
        )
    frame = frame.copy()
    frame["x"] = [repr(float(v)) for v in xs]
    frame["y"] = [repr(float(v)) for v in ys]
    return frame


# ----------------------------------------------------------------------------- vectors


def spatial_layers(path: Path) -> list[str]:
    """The layers of a vector file that have geometries (a GeoPackage's attribute tables,
    such as QGIS's layer_styles, are not candidates)."""
    import pyogrio

    try:
        listed = pyogrio.list_layers(path)
    except Exception as exc:  # pyogrio raises its own DataSourceError and friends
        raise InputError(f"cannot read the points file {path}: {exc}") from None
    return [str(name) for name, geometry in listed if geometry is not None]


def choose_layer(path: Path, layer: str | None, what: str = "points file") -> tuple[str, str]:
    """(the layer to read, how messages name the file): ``layer`` when given (it must exist),
    the only one when there is one; several and none named: an error listing them."""
    names = spatial_layers(path)
    if layer is not None:
        if layer not in names:
            raise InputError(
                f"{what} {path} has no layer {layer!r} with geometries; its layers: "
                + (", ".join(names) or "none")
            )
        return layer, f"{path} (layer {layer!r})"
    if len(names) > 1:
        raise InputError(
            f"{what} {path} has {len(names)} layers: {', '.join(names)}; choose one with "
            "--layer NAME"
        )
    if not names:
        raise InputError(f"{what} {path} has no layer with geometries")
    return names[0], str(path)


def _read_vector(
    path: Path,
    grid: Grid,
    layer: str | None,
    source: Any,
    points_crs: str | None,
    polygons: str,
    strict: bool,
    accept_polygons: bool,
    what: str,
) -> PointTable:
    try:
        import geopandas
        import pyogrio  # noqa: F401 - the engine geopandas reads with
    except ImportError:
        raise InputError(f"{what} {path}: {VECTOR_HINT}") from None
    chosen, where = choose_layer(path, layer, what)
    try:
        gdf = geopandas.read_file(path, layer=chosen, engine="pyogrio")
    except Exception as exc:  # pyogrio raises its own DataSourceError and friends
        raise InputError(f"cannot read the {what} {where}: {exc}") from None
    gdf = gdf.reset_index(drop=True)
    crs_known = True
    if source is not None:
        if gdf.crs is not None and not gdf.crs.equals(source.to_wkt(), ignore_axis_order=True):
            raise InputError(
                f"{what} {where} has its own CRS ({gdf.crs.to_string()}), and --points-crs says "
                f"{points_crs}: they differ; drop --points-crs to use the layer's, or fix the layer"
            )
        if gdf.crs is None:
            gdf = gdf.set_crs(source.to_wkt())
    if gdf.crs is None:
        crs_known = False
        log.warning(
            "%s %s has no CRS: taking its coordinates as the rasters' CRS (%s); give their CRS "
            "with --points-crs if they are in another one",
            what,
            where,
            crs_text(grid.crs),
        )
    elif grid.crs:
        gdf = gdf.to_crs(grid.crs.to_wkt())
    else:
        _unknown_crs(
            f"{what} {where} has a CRS ({gdf.crs.to_string()}) but the rasters have none: its "
            "coordinates are taken as they are; assign the rasters' CRS (gdal_edit.py -a_srs "
            "EPSG:XXXX FILE) so that the points can be reprojected",
            strict,
        )
    kind = _geometry_kind(gdf, where, what)
    attributes = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    if kind == "polygons" and not accept_polygons:
        raise InputError(
            f"{what} {where} holds polygons: give points (one per sample unit), e.g. the "
            "points `design` wrote"
        )
    if kind == "points":
        xs, ys = gdf.geometry.x.to_numpy(np.float64), gdf.geometry.y.to_numpy(np.float64)
        table = PointTable(_set_xy(attributes, xs, ys, where), xs, ys, kind, where)
    elif kind == "multipoints":
        parts = gdf.geometry.explode(index_parts=False)
        ids = parts.index.to_numpy()
        xs, ys = parts.x.to_numpy(np.float64), parts.y.to_numpy(np.float64)
        rows = _with_id(attributes, ids, "feature_id", where)
        table = PointTable(_set_xy(rows, xs, ys, where), xs, ys, kind, where)
    elif polygons == "centroid":
        inner = gdf.geometry.representative_point()
        xs, ys = inner.x.to_numpy(np.float64), inner.y.to_numpy(np.float64)
        rows = _with_id(attributes, np.arange(len(gdf)), "polygon_id", where)
        table = PointTable(_set_xy(rows, xs, ys, where), xs, ys, "centroids", where)
    else:
        from .polygons import polygon_pixels

        ids, prow, pcol = polygon_pixels(list(gdf.geometry), grid, where)
        from .pixels import pixel_centres

        xs, ys = pixel_centres(grid, prow, pcol)
        rows = _with_id(attributes, ids, "polygon_id", where)
        table = PointTable(_set_xy(rows, xs, ys, where), xs, ys, kind, where, (prow, pcol))
    table.crs_known = crs_known
    if not crs_known and looks_like_degrees(grid, table.xs, table.ys):
        _unknown_crs(_degrees_message(where, grid), strict)
    return table


def _with_id(frame: pd.DataFrame, ids: np.ndarray, name: str, where: str) -> pd.DataFrame:
    """The attributes of features ``ids`` (one row each, repeated as needed), then ``name``."""
    if name in frame.columns:
        raise InputError(
            f"points file {where}: attribute {name!r} would collide with the {name} written "
            "(the feature's position in the layer); rename it"
        )
    out = frame.iloc[ids].reset_index(drop=True)
    out[name] = np.asarray(ids, dtype=np.int64)
    return out


def _geometry_kind(gdf: Any, where: str, what: str) -> str:
    """points, multipoints or polygons: one kind per layer, else an error naming the types."""
    geoms = gdf.geometry
    missing = np.flatnonzero((geoms.isna() | geoms.is_empty).to_numpy())
    if missing.size:
        shown = ", ".join(map(str, missing[:10])) + (", ..." if missing.size > 10 else "")
        raise InputError(
            f"{what} {where}: {missing.size} feature(s) without a geometry (features {shown}, "
            "0-based); delete them or give them one"
        )
    counts = geoms.geom_type.value_counts()
    types = {str(t): int(n) for t, n in counts.items()}
    found = ", ".join(f"{t} ({n})" for t, n in sorted(types.items()))
    others = [t for t in types if t not in _KINDS]
    if others:
        raise InputError(
            f"{what} {where} holds {found}: training and reference data are points, "
            "multipoints or polygons"
        )
    kinds = {_KINDS[t] for t in types}
    if len(kinds) > 1:
        raise InputError(
            f"{what} {where} mixes geometry types: {found}; one layer must hold one kind "
            "(points, multipoints or polygons): split it by geometry type"
        )
    return kinds.pop()
