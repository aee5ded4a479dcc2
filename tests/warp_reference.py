"""The in-memory reference for ``rasters.align`` (misfit grids): each misfit layer read whole,
its nodata (NaN, +-inf, the given values, the file's tag) set to NaN, and warped onto the
reference grid in one ``rasterio.warp.reproject`` call (NaN as source and destination
nodata). Nothing here imports the package under test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from helpers import AZURE_NODATA, write_raster
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject
from reference import nodata_mask

LOCAL = CRS.from_wkt('LOCAL_CS["unknown",UNIT["metre",1]]')


def warp_in_memory(
    path: Path,
    ref: Path,
    method: str,
    nodata_values: tuple[float, ...] = (AZURE_NODATA,),
) -> np.ndarray:
    """The whole layer warped onto ref's grid in one reproject call; NaN = no valid value.

    GDAL's kernel scale is fixed to the ratio of the pixel sizes (XSCALE/YSCALE), as the
    tool documents: left to GDAL, it is derived from the source extent clipped at the layer's
    edge, which is an artefact of where a warp call's edges happen to fall.
    """
    with rasterio.open(path) as src:
        data = src.read(1).astype(np.float32)
        mask = nodata_mask(data, src.nodata, list(nodata_values), True)
        data[mask] = np.nan
        src_crs, src_transform = src.crs, src.transform
    with rasterio.open(ref) as grid:
        out = np.full((grid.height, grid.width), np.nan, np.float32)
        reproject(
            data,
            out,
            src_transform=src_transform,
            src_crs=src_crs or LOCAL,  # grids without a CRS: warped by their transforms alone
            src_nodata=np.nan,
            dst_transform=grid.transform,
            dst_crs=grid.crs or LOCAL,
            dst_nodata=np.nan,
            resampling=Resampling[method],
            XSCALE=repr(abs(src_transform.a / grid.transform.a)),
            YSCALE=repr(abs(src_transform.e / grid.transform.e)),
        )
    return out


def oracle_folder(folder: Path, target: Path, ref: Path, methods: dict[str, str]) -> Path:
    """Every layer of ``folder`` on ref's grid: misfit ones warped in memory, others copied."""
    with rasterio.open(ref) as grid:
        ref_grid = (grid.crs, grid.transform, grid.width, grid.height)
    for path in sorted(folder.glob("*.tif")):
        with rasterio.open(path) as src:
            same = (src.crs, src.transform, src.width, src.height) == ref_grid
            data, nodata = src.read(1), src.nodata
        if not same:
            data, nodata = warp_in_memory(path, ref, methods[path.stem]), None
        write_raster(
            target / path.name, data, nodata=nodata, crs=ref_grid[0], transform=ref_grid[1]
        )
    return target
