"""``sample``: the covariate values under points (training data), exactly as a run reads them.

POINTS is a CSV (x/y, lon/lat, longitude/latitude or easting/northing) or, with the ``vector``
extra (geopandas + pyogrio), one layer of a vector file: points, multipoints or polygons
(one row per pixel whose centre is inside, or one per polygon with ``--polygons centroid``);
see ``inputs.points`` for the rules on layers, CRSs and columns. The output keeps the input's
columns, writes x and y in the rasters' CRS, and adds one column per layer: the model's
features in the model's order, then the layers the model does not use (a training table wants
them all). A value is the float32 the run would give the model before filling; nodata is left
empty. Points are grouped by block, so only the blocks that hold points are read, each once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio

from ..config import Config, load_config
from ..errors import OutputError
from ..inputs.grid import Grid, crs_text, same_grid
from ..inputs.layers import Band, Layer, open_layers, reference_grid
from ..inputs.pixels import block_groups, on_grid, pixel_of
from ..inputs.points import read_points
from ..inputs.reader import StackReader
from ..models.load import load_model
from ..models.schema import resolve_schema
from ..outputs.atomic import replace_atomic
from ..prepare import budget, find_layers, model_bands

log = logging.getLogger(__name__)


@dataclass
class SampleResult:
    output: Path
    points: int  # rows written (a polygon gives one per pixel)
    columns: list[str]  # the value columns added, in order
    outside: list[int]  # 1-based data rows (of the output) of points outside the grid
    reads: int  # windows read (each within one block cell), for all layers at once


def sample(
    config: str | os.PathLike | Mapping | Config,
    points: str | os.PathLike,
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    prefix: str = "",
    points_crs: str | None = None,
    layer: str | None = None,
    polygons: str = "pixels",
) -> SampleResult:
    """Write ``out``: the rows of ``points`` plus the value of every layer under each point.

    Needs only the ``rasters`` section: with a model, its features come first in its order,
    then the other layers on its grid; without one, every layer found. ``prefix`` goes before
    every layer column (points whose attributes are named like layers); ``points_crs`` is the
    CRS of the points when they have none (a CSV, a shapefile without .prj), e.g. EPSG:4326;
    ``layer`` names the layer of a multi-layer vector file; ``polygons`` is ``pixels`` (a row
    per pixel whose centre is inside) or ``centroid`` (a row per polygon).
    """
    cfg = load_config(config)
    points, out = Path(points), Path(out)
    if out.exists() and out.resolve() == points.resolve():
        raise OutputError(f"the output {out} is the points file itself; choose another name")
    if out.exists() and not overwrite:
        raise OutputError(f"output {out} already exists; pass --overwrite to replace it")

    grid, layers, bands = _sample_layers(cfg)
    columns = [prefix + la.name for la in layers]
    table = read_points(
        points, grid, layer=layer, points_crs=points_crs, polygons=polygons, reserved=columns
    )
    if table.pixels is not None:
        rows, cols = table.pixels
    else:
        rows, cols = pixel_of(grid, table.xs, table.ys)
    _, cache_mb = budget(cfg, len(layers), 1, 1)
    values, empty, reads = values_at(layers, grid, rows, cols, cache_mb)
    off = np.flatnonzero(~on_grid(grid, rows, cols))
    outside = [int(i) + 1 for i in off]

    out_table = table.frame.copy()
    for j, name in enumerate(columns):
        out_table[name] = [
            "" if e else repr(float(v)) for v, e in zip(values[:, j], empty[:, j], strict=True)
        ]
    _write_csv(out_table, out)
    n = len(rows)
    if outside:
        shown = ", ".join(map(str, outside[:10])) + (", ..." if len(outside) > 10 else "")
        log.warning(
            "%d of %d point(s) in %s lie outside the grid (data rows %s): kept with empty values",
            len(outside),
            n,
            table.where,
            shown,
        )
        if cfg.rasters.align and cfg.rasters.reference is None:
            _warn_chosen_grid(cfg, grid, bands, table.xs[off], table.ys[off], n)
        if len(outside) * 2 > n and table.kind == "csv" and not table.crs_known:
            log.warning(
                "most points lie outside the grid: are their coordinates in the rasters' CRS "
                "(%s)? Give their CRS with --points-crs EPSG:... to have them reprojected",
                crs_text(grid.crs) if grid.crs else "the rasters have none",
            )
    return SampleResult(out, n, columns, outside, reads)


def sample_layers(cfg: Config) -> tuple[Grid, list[Layer]]:
    """The layers to sample, on one grid: the model's features in its order, then the other
    layers on its grid (under rasters.align, warped onto it); without a model, every layer.

    Like a run: the same discovery (the run's outputs are never layers), feature schema,
    missing-feature error, grid check and nodata rule; an existing output is no obstacle.
    """
    grid, layers, _ = _sample_layers(cfg)
    return grid, layers


def _sample_layers(cfg: Config) -> tuple[Grid, list[Layer], list[Band]]:
    """``sample_layers``, and the bands whose grids chose the reference grid."""
    found = find_layers(cfg)
    if cfg.model is None:
        grid, layers = open_layers(found.bands, cfg.nodata, cfg.rasters)
        return grid, layers, list(found.bands)
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
    return grid, layers, [*bands, *fits]


def _warn_chosen_grid(
    cfg: Config, grid: Grid, bands: Sequence[Band], xs: np.ndarray, ys: np.ndarray, n: int
) -> None:
    """Under rasters.align without rasters.reference: count the points off the grid the tool
    chose that another layer covers, and say how to sample them."""
    from rasterio.warp import transform

    covered = np.zeros(len(xs), dtype=bool)
    example = ""
    for band in bands:
        if same_grid(grid, band.grid) or (band.grid.crs is None) != (grid.crs is None):
            continue
        bx, by = xs, ys
        if band.grid.crs is not None and band.grid.crs != grid.crs:
            tx, ty = transform(grid.crs, band.grid.crs, xs.tolist(), ys.tolist())
            bx, by = np.asarray(tx, dtype=np.float64), np.asarray(ty, dtype=np.float64)
        hit = on_grid(band.grid, *pixel_of(band.grid, bx, by)) & ~covered
        if hit.any() and not example:
            example = band.label
        covered |= hit
    if covered.any():
        ref = reference_grid(bands, cfg.rasters)
        log.warning(
            "%d of %d point(s) lie outside %s, which rasters.align chose as the reference grid, "
            "but inside other layers (e.g. %s): their values are empty; set rasters.reference "
            "to a raster whose grid covers them to sample them",
            int(covered.sum()),
            n,
            ref.what,
            example,
        )


# ----------------------------------------------------------------------------- values


def values_at(
    layers: Sequence[Layer],
    grid: Grid,
    rows: np.ndarray,
    cols: np.ndarray,
    cache_mb: int = 64,
) -> tuple[np.ndarray, np.ndarray, int]:
    """(float32 values (points, layers), empty (nodata or outside), windows read) at pixels
    (``rows``, ``cols``) of the grid.

    Points are grouped by block cell (the smallest block of any layer, at most MAX_CELL
    on a side); each cell is read once for all layers, as the bounding box of its points,
    in row-major order, so GDAL's block cache (``cache_mb``; its default, 5% of the RAM,
    would keep every block read) only needs a row of blocks.
    """
    n, n_layers = len(rows), len(layers)
    values = np.zeros((n, n_layers), dtype=np.float32)
    empty = np.ones((n, n_layers), dtype=bool)
    if not n_layers:
        return values, empty, 0
    block = (
        min(max(1, la.block_shape[0]) for la in layers),
        min(max(1, la.block_shape[1]) for la in layers),
    )
    reads = 0
    # an int GDAL_CACHEMAX in rasterio.Env is bytes, not MB
    with rasterio.Env(GDAL_CACHEMAX=cache_mb * 2**20), StackReader(layers) as reader:
        for members, window in block_groups(grid, rows, cols, block):
            data, invalid = reader.read(window)
            at = (rows[members] - int(window.row_off)) * int(window.width) + (
                cols[members] - int(window.col_off)
            )
            values[members] = data[:, at].T
            empty[members] = invalid[:, at].T
            reads += 1
    return values, empty, reads


def _write_csv(table: pd.DataFrame, out: Path) -> None:
    """Written under a temporary name and renamed: nothing half-written under ``out``."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc}") from None
    replace_atomic(out, lambda temp: table.to_csv(temp, index=False, encoding="utf-8"))
