"""Open the layers' headers, check they share the reference grid, build each nodata rule.

Only headers are read here; pixels are read by ``reader``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioError

from ..config import NodataConfig, RastersConfig
from ..errors import ConfigError, InputError
from .grid import Grid, grid_differences, same_grid
from .warp import Warp, kernel_scales

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Layer:
    """One covariate: a single-band raster and its nodata rule (float32 values)."""

    name: str
    path: Path
    dtype: str
    block_shape: tuple[int, int]  # (rows, cols) of band 1's internal blocks
    nodata_values: tuple[float, ...]  # float32-cast values that mean nodata (NaN/inf always do)
    warp: Warp | None = None  # rasters.align: read warped onto the reference grid



def _float32_values(values: Sequence[float]) -> tuple[float, ...]:
    """Cast nodata values to float32 the way pixel values are; NaN and inf need no entry."""
    with np.errstate(over="ignore", invalid="ignore"):
        cast = np.asarray(values, dtype=np.float64).astype(np.float32)
    return tuple(sorted({float(v) for v in cast if np.isfinite(v)}))


def open_layers(
    named_paths: Sequence[tuple[str, Path | str]], nodata: NodataConfig, rasters: RastersConfig
) -> tuple[Grid, list[Layer]]:
    """Open each raster's header, check it is on the grid, build its nodata rule.

    The grid is the first raster's, or with ``rasters.align`` the grid of
    ``rasters.reference`` when given; under ``rasters.align`` a layer off that grid is read
    warped onto it, otherwise it is an error naming what differs.
    """
    align = rasters.align
    grid: Grid | None = None
    first: Path | str | None = None
    ref_block: tuple[int, int] | None = None
    if align and rasters.reference is not None:
        try:
            grid, ref_block, _, _ = _header(rasters.reference)
        except InputError as exc:
            raise InputError(f"rasters.reference: {exc}") from None
        first = rasters.reference
    if align:
        _check_resampling_names(rasters, [name for name, _ in named_paths])
    layers = []
    for name, path in named_paths:
        this, block, dtype, file_nodata = _header(path)
        if grid is None:
            grid, first, ref_block = this, path, block
        warp = None
        if not same_grid(grid, this):
            if not align:
                _check_same_grid(grid, this, path, first)
            assert ref_block is not None
            warp = Warp(
                grid.crs.to_wkt(),  # type: ignore[attr-defined]
                tuple(grid.transform)[:6],  # type: ignore[arg-type]
                grid.width,
                grid.height,
                rasters.resampling_for(name),
                *kernel_scales(
                    grid.crs, grid.transform, (grid.height, grid.width), this.crs, this.transform
                ),
            )
            block = ref_block  # windows follow the reference grid's blocks
            log.info("layer %s is warped onto the grid of %s (%s)", name, first, warp.resampling)
        values = list(nodata.values)
        if nodata.use_file_nodata and file_nodata is not None:
            values.append(file_nodata)
        layers.append(Layer(name, path, dtype, block, _float32_values(values), warp))
    assert grid is not None
    return grid, layers


def _header(path: Path | str) -> tuple[Grid, tuple[int, int], str, float | None]:
    """(grid, band 1's block shape, dtype, file nodata) of one raster."""
    try:
        with rasterio.open(path) as ds:
            return (
                Grid(ds.crs, ds.transform, ds.width, ds.height),
                (int(ds.block_shapes[0][0]), int(ds.block_shapes[0][1])),
                ds.dtypes[0],
                ds.nodatavals[0],
            )
    except RasterioError as exc:
        raise InputError(f"cannot open raster {path}: {exc}") from None


def _check_resampling_names(rasters: RastersConfig, names: Sequence[str]) -> None:
    unknown = [k for k in rasters.resampling if k != "default" and k not in set(names)]
    if unknown:
        raise ConfigError(
            f"config key 'rasters.resampling': no layer is named {', '.join(unknown)} "
            f"(layers: {', '.join(names)})"
        )


def _check_same_grid(ref: Grid, this: Grid, path: Path | str, first: Path | str | None) -> None:
    """A misfit raster is an error naming what differs, with both values."""
    raise InputError(
        f"raster {path} is not on the grid of {first}: "
        + "; ".join(grid_differences(ref, this))
        + "; set rasters.align: true to warp it onto that grid"
    )
