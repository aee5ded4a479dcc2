"""``sample``: the covariate values under points, exactly as a run reads them.

POINTS is a CSV with ``x`` and ``y`` columns in the rasters' CRS or, with the ``vector``
extra (geopandas + pyogrio), any vector file of points, reprojected to the rasters' CRS.
The output keeps the input's columns and adds one column per layer: the model's features in
the model's order, then the layers the model does not use (a training table wants them all).
A value is the float32 the run would give the model before filling; nodata is left empty.
Points are grouped by block, so only the blocks that hold points are read, each once.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
from rasterio.windows import Window

from ..config import Config, load_config
from ..errors import InputError, OutputError
from ..inputs.grid import Grid, crs_text, same_grid
from ..inputs.layers import Layer, open_layers
from ..inputs.reader import StackReader
from ..inputs.tables import read_csv_text
from ..models.load import load_model
from ..models.schema import resolve_schema
from ..outputs.atomic import replace_atomic
from ..prepare import budget, find_layers, model_bands

log = logging.getLogger(__name__)

CSV_SUFFIXES = (".csv", ".txt")
VECTOR_HINT = (
    'reading points from a vector file needs geopandas and pyogrio: pip install "windowed_classify'
    "[vector]\" (or give a CSV with x and y columns in the rasters' CRS)"
)
MAX_CELL = 256  # a read covers at most this many rows and columns of one block


@dataclass
class SampleResult:
    output: Path
    points: int
    columns: list[str]  # the value columns added, in order
    outside: list[int]  # 1-based data rows (file order) of points outside the grid
    reads: int  # windows read (each within one block cell), for all layers at once


def sample(
    config: str | os.PathLike | Mapping | Config,
    points: str | os.PathLike,
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    prefix: str = "",
    points_crs: str | None = None,
) -> SampleResult:
    """Write ``out``: the rows of ``points`` plus the value of every layer under each point.

    Needs only the ``rasters`` section: with a model, its features come first in its order,
    then the other layers on its grid; without one, every layer found. ``prefix`` goes before
    every layer column (points whose attributes are named like layers); ``points_crs`` is the
    CRS of a CSV's x and y (EPSG:4326, say), reprojected to the rasters' CRS.
    """
    cfg = load_config(config)
    points, out = Path(points), Path(out)
    if out.resolve() == points.resolve():
        raise OutputError(f"the output {out} is the points file itself; choose another name")
    if out.exists() and not overwrite:
        raise OutputError(f"output {out} already exists; pass --overwrite to replace it")

    grid, layers = sample_layers(cfg)
    columns = [prefix + layer.name for layer in layers]
    frame, xs, ys = read_points(points, grid, columns, points_crs)
    _, cache_mb = budget(cfg, len(layers), 1, 1)
    values, empty, reads = values_at(layers, grid, xs, ys, cache_mb)
    outside = [int(i) + 1 for i in np.flatnonzero(~_inside(grid, xs, ys))]

    table = frame.copy()
    for j, name in enumerate(columns):
        table[name] = [
            "" if e else repr(float(v)) for v, e in zip(values[:, j], empty[:, j], strict=True)
        ]
    _write_csv(table, out)
    if outside:
        shown = ", ".join(map(str, outside[:10])) + (", ..." if len(outside) > 10 else "")
        log.warning(
            "%d of %d point(s) in %s lie outside the grid (data rows %s): kept with empty values",
            len(outside),
            len(xs),
            points,
            shown,
        )
        if len(outside) * 2 > len(xs) and points.suffix.lower() in CSV_SUFFIXES:
            log.warning(
                "most points lie outside the grid: are x and y in the rasters' CRS (%s)? A "
                "CSV's coordinates must be in it, or give their CRS with --points-crs EPSG:... "
                "to have them reprojected",
                crs_text(grid.crs) if grid.crs else "the rasters have none",
            )
    return SampleResult(out, len(xs), columns, outside, reads)


def sample_layers(cfg: Config) -> tuple[Grid, list[Layer]]:
    """The layers to sample, on one grid: the model's features in its order, then the other
    layers on its grid (under rasters.align, warped onto it); without a model, every layer.

    Like a run: the same discovery (the run's outputs are never layers), feature schema,
    missing-feature error, grid check and nodata rule; an existing output is no obstacle.
    """
    found = find_layers(cfg)
    if cfg.model is None:
        return open_layers(found.bands, cfg.nodata, cfg.rasters)
    schema = resolve_schema(load_model(cfg.model.path), cfg.model)
    bands = model_bands(found, schema, cfg)
    grid, layers = open_layers(bands, cfg.nodata, cfg.rasters)
    others = [b for b in found.bands if b.name not in set(schema.features)]
    fits = [
        b
        for b in others
        if same_grid(grid, b.grid)
        or (cfg.rasters.align and (b.grid.crs is None) == (grid.crs is None))
    ]
    if fits:  # read on the model's grid (warped onto it under rasters.align)
        _, layers = open_layers(bands, cfg.nodata, cfg.rasters, extra=fits)
    skipped = [b.label for b in others if b not in fits]
    skipped += [
        f"{u.source.path} (cannot be opened)"
        for u in found.unreadable
        if u.name not in set(schema.features)
    ]
    if skipped:
        log.warning(
            "not sampled: %d layer(s) the model does not use, off its grid or unreadable: %s",
            len(skipped),
            ", ".join(skipped),
        )
    return grid, layers


# ----------------------------------------------------------------------------- points


def read_points(
    path: Path, grid: Grid, names: Sequence[str], points_crs: str | None = None
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(the input's columns as read, x, y in the grid's CRS); a clear error for bad input."""
    if not path.is_file():
        raise InputError(f"points file not found: {path}")
    if path.suffix.lower() in CSV_SUFFIXES:
        frame = read_csv_text(path, "points file")
        xs, ys = _coordinates(frame, path)
        if points_crs is not None:
            xs, ys = _reproject(xs, ys, points_crs, grid, path)
    else:
        if points_crs is not None:
            raise InputError(
                f"--points-crs is for a CSV's coordinates; the points file {path} carries its "
                "own CRS"
            )
        frame, xs, ys = _read_vector(path, grid)
    clash = [c for c in frame.columns if c in set(names)]
    if clash:
        raise InputError(
            f"points file {path}: column(s) {', '.join(map(repr, clash))} have the name of a "
            "layer, whose values would replace them; rename them, or put a prefix before the "
            "layer columns with --prefix"
        )
    return frame, xs, ys


def _reproject(
    xs: np.ndarray, ys: np.ndarray, crs: str, grid: Grid, path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """A CSV's coordinates from ``crs`` (--points-crs) to the rasters' CRS."""
    from rasterio.crs import CRS
    from rasterio.errors import CRSError
    from rasterio.warp import transform

    try:
        source = CRS.from_user_input(crs)
    except CRSError as exc:
        raise InputError(f"--points-crs {crs!r} is not a CRS GDAL knows: {exc}") from None
    if grid.crs is None:
        raise InputError(
            f"--points-crs {crs}: the rasters have no CRS, so the points of {path} cannot be "
            "reprojected onto them; give x and y in the rasters' own coordinates"
        )
    tx, ty = transform(source, grid.crs, xs.tolist(), ys.tolist())
    return np.asarray(tx, dtype=np.float64), np.asarray(ty, dtype=np.float64)


def _coordinates(frame: pd.DataFrame, path: Path) -> tuple[np.ndarray, np.ndarray]:
    absent = [c for c in ("x", "y") if c not in frame.columns]
    if absent:
        raise InputError(
            f"points file {path} has no column {' or '.join(map(repr, absent))}: it needs "
            f"'x' and 'y' in the rasters' CRS (its columns: {', '.join(map(str, frame.columns))})"
        )
    out = []
    for axis in ("x", "y"):
        text = frame[axis].str.strip()
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            i = int(bad[0])
            raise InputError(
                f"points file {path}, data row {i + 1}: {axis} = {frame[axis].iloc[i]!r} is not "
                f"a number ({bad.size} such row(s))"
            )
        out.append(values)
    return out[0], out[1]


def _read_vector(path: Path, grid: Grid) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Point features of any OGR vector file, reprojected to the grid's CRS."""
    try:
        import geopandas
        import pyogrio  # noqa: F401 - the engine geopandas reads with
    except ImportError:
        raise InputError(f"points file {path}: {VECTOR_HINT}") from None
    try:
        gdf = geopandas.read_file(path, engine="pyogrio")
    except Exception as exc:  # pyogrio raises its own DataSourceError and friends
        raise InputError(f"cannot read the points file {path}: {exc}") from None
    if gdf.crs is None:
        log.warning("points file %s has no CRS: taking its coordinates as the rasters' CRS", path)
    elif grid.crs:
        gdf = gdf.to_crs(grid.crs.to_wkt())  # type: ignore[attr-defined]
    else:
        log.warning(
            "points file %s has a CRS (%s) but the rasters have none: its coordinates are "
            "taken as they are; assign the rasters' CRS (gdal_edit.py -a_srs EPSG:XXXX FILE) "
            "so that the points can be reprojected",
            path,
            gdf.crs.to_string(),
        )
    geoms = gdf.geometry
    kinds = set(geoms.geom_type.dropna())
    if kinds - {"Point"} or geoms.is_empty.any() or geoms.isna().any():
        raise InputError(
            f"points file {path}: every feature must be a single point "
            f"(found {', '.join(sorted(map(str, kinds))) or 'empty geometries'})"
        )
    frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    taken = [c for c in ("x", "y") if c in frame.columns]
    if taken:
        raise InputError(
            f"points file {path}: attribute(s) {', '.join(map(repr, taken))} would collide with "
            "the x and y columns written in the rasters' CRS; rename them"
        )
    xs, ys = geoms.x.to_numpy(np.float64), geoms.y.to_numpy(np.float64)
    frame["x"], frame["y"] = [repr(float(v)) for v in xs], [repr(float(v)) for v in ys]
    return frame, xs, ys


# ----------------------------------------------------------------------------- values


def _pixels(grid: Grid, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of the pixel holding each point; a point on an edge goes right and down."""
    inv: Any = ~grid.transform  # type: ignore[operator]
    cols = inv.a * xs + inv.b * ys + inv.c
    rows = inv.d * xs + inv.e * ys + inv.f
    return np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)


def _inside(grid: Grid, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    rows, cols = _pixels(grid, xs, ys)
    return (rows >= 0) & (rows < grid.height) & (cols >= 0) & (cols < grid.width)


def values_at(
    layers: Sequence[Layer],
    grid: Grid,
    xs: np.ndarray,
    ys: np.ndarray,
    cache_mb: int = 64,
) -> tuple[np.ndarray, np.ndarray, int]:
    """(float32 values (points, layers), empty (nodata or outside), windows read).

    Points are grouped by block cell (the smallest block of any layer, at most MAX_CELL
    on a side); each cell is read once for all layers, as the bounding box of its points,
    in row-major order, so GDAL's block cache (``cache_mb``; its default, 5% of the RAM,
    would keep every block read) only needs a row of blocks.
    """
    n, n_layers = len(xs), len(layers)
    values = np.zeros((n, n_layers), dtype=np.float32)
    empty = np.ones((n, n_layers), dtype=bool)
    rows, cols = _pixels(grid, xs, ys)
    inside = np.flatnonzero(_inside(grid, xs, ys))
    if not inside.size or not n_layers:
        return values, empty, 0
    cell_h = min(MAX_CELL, *(max(1, la.block_shape[0]) for la in layers))
    cell_w = min(MAX_CELL, *(max(1, la.block_shape[1]) for la in layers))
    cell_of = (rows[inside] // cell_h) * math.ceil(grid.width / cell_w) + cols[inside] // cell_w
    order = np.argsort(cell_of, kind="stable")  # row-major cells: blocks in file order
    groups = np.split(inside[order], np.flatnonzero(np.diff(cell_of[order])) + 1)
    # an int GDAL_CACHEMAX in rasterio.Env is bytes, not MB
    with rasterio.Env(GDAL_CACHEMAX=cache_mb * 2**20), StackReader(layers) as reader:
        for members in groups:
            r, c = rows[members], cols[members]
            r0, c0 = int(r.min()), int(c.min())
            window = Window(c0, r0, int(c.max()) - c0 + 1, int(r.max()) - r0 + 1)
            data, invalid = reader.read(window)
            at = (r - r0) * int(window.width) + (c - c0)
            values[members] = data[:, at].T
            empty[members] = invalid[:, at].T
    return values, empty, len(groups)


def _write_csv(table: pd.DataFrame, out: Path) -> None:
    """Written under a temporary name and renamed: nothing half-written under ``out``."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc}") from None
    replace_atomic(out, lambda temp: table.to_csv(temp, index=False, encoding="utf-8"))
