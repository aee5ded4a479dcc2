"""Misfit grids (``rasters.align``): warp a layer onto the reference grid, one window at a time.

For a window of the reference grid, the source pixels that can reach it (its footprint in the
layer's own grid, padded by the resampling kernel's reach) are read, cast to float32, every
nodata value of the layer (NaN, +-inf, ``nodata.values``, the file's tag) becomes NaN, and
``rasterio.warp.reproject`` warps them onto the window with NaN as source and destination
nodata. So nodata is left out of every kernel, and the area outside the layer's extent is
nodata. The result equals warping the whole layer in memory the same way (tests/test_align.py
checks every tiling against that); see docs/misfit-grids.md for why this does not use a
GDAL WarpedVRT, and for the one case where windows and a whole-layer warp can differ.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import Affine
from rasterio.warp import reproject, transform, transform_bounds
from rasterio.windows import Window, from_bounds
from rasterio.windows import bounds as window_bounds
from rasterio.windows import transform as window_transform

# Kernel reach in source pixels at scale 1 (GDAL's warp kernels); widened when downsampling.
_RADIUS = {"nearest": 1, "bilinear": 1, "cubic": 2, "cubic_spline": 2, "lanczos": 3}
_MARGIN = 2  # source pixels beyond the kernel's reach: footprint rounding, never short


@dataclass(frozen=True)
class Warp:
    """How to bring one layer onto the reference grid (small and picklable: it travels with
    the layer to worker processes)."""

    crs_wkt: str  # the reference grid's CRS; "" when it has none (nor has the layer)
    transform: tuple[float, float, float, float, float, float]  # its affine, a..f
    width: int
    height: int
    resampling: str  # a rasterio.enums.Resampling name
    xscale: float = 1.0  # reference pixels per layer pixel along x (GDAL's XSCALE)
    yscale: float = 1.0  # and along y

    @property
    def options(self) -> dict[str, str]:
        """GDAL warp options: a fixed kernel scale. GDAL otherwise derives it per warp chunk
        from the chunk's source and destination sizes (clipped at the layer's edge), so a
        downsampling kernel would depend on the window; fixed, every window warps alike."""
        return {"XSCALE": repr(self.xscale), "YSCALE": repr(self.yscale)}

    @property
    def affine(self) -> Affine:
        return Affine(*self.transform)

    @property
    def crs(self) -> CRS | None:
        return CRS.from_wkt(self.crs_wkt) if self.crs_wkt else None


# Grids without a CRS are warped by their transforms alone: GDAL needs a CRS on both sides,
# so both get this local one (the same on both sides: no reprojection, only the transforms).
LOCAL = CRS.from_wkt('LOCAL_CS["unknown",UNIT["metre",1]]')


def kernel_scales(
    ref_crs: CRS | None,
    ref_transform: Affine,
    ref_shape: tuple[int, int],
    src_crs: CRS | None,
    src_transform: Affine,
) -> tuple[float, float]:
    """(x, y) reference pixels per layer pixel: the pixel sizes' ratio (same CRS), else the
    size of one reference pixel in layer pixels at the reference grid's centre."""
    if ref_crs == src_crs and ref_transform.is_rectilinear and src_transform.is_rectilinear:
        return abs(src_transform.a / ref_transform.a), abs(src_transform.e / ref_transform.e)
    height, width = ref_shape
    cols, rows = [width / 2, width / 2 + 1, width / 2], [height / 2, height / 2, height / 2 + 1]
    xs, ys = zip(*(ref_transform * (c, r) for c, r in zip(cols, rows, strict=True)), strict=True)
    xs, ys = transform(ref_crs, src_crs, list(xs), list(ys))
    px = [~src_transform * (x, y) for x, y in zip(xs, ys, strict=True)]
    step_x = math.hypot(px[1][0] - px[0][0], px[1][1] - px[0][1])
    step_y = math.hypot(px[2][0] - px[0][0], px[2][1] - px[0][1])
    return 1.0 / max(step_x, 1e-12), 1.0 / max(step_y, 1e-12)


def source_window(
    warp: Warp, window: Window, src_crs: CRS, src_transform: Affine, src_shape: tuple[int, int]
) -> Window | None:
    """The layer's pixels that can reach ``window`` of the reference grid (None: none can)."""
    dst_bounds = window_bounds(window, warp.affine)
    ref_crs = warp.crs
    if ref_crs != src_crs:
        dst_bounds = transform_bounds(ref_crs, src_crs, *dst_bounds, densify_pts=21)
    foot = from_bounds(*dst_bounds, transform=src_transform)
    # source pixels per destination pixel: the kernel widens by it when downsampling
    scale = max(1.0, foot.width / max(window.width, 1), foot.height / max(window.height, 1))
    pad = math.ceil(_RADIUS.get(warp.resampling, 1) * scale) + _MARGIN
    height, width = src_shape
    col0 = max(0, math.floor(foot.col_off) - pad)
    row0 = max(0, math.floor(foot.row_off) - pad)
    col1 = min(width, math.ceil(foot.col_off + foot.width) + pad)
    row1 = min(height, math.ceil(foot.row_off + foot.height) + pad)
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


def read_warped(
    warp: Warp,
    window: Window,
    src_crs: CRS | None,
    src_transform: Affine,
    src_shape: tuple[int, int],
    read_source: Callable[[Window], np.ndarray],
) -> np.ndarray:
    """``window`` of the reference grid as float32, NaN where the layer has no valid value.

    ``read_source(w)`` reads the layer's band in its own window ``w`` as float32, every
    nodata value already NaN (so no nodata value enters a kernel).
    """
    out = np.full((int(window.height), int(window.width)), np.nan, dtype=np.float32)
    src_window = source_window(warp, window, src_crs, src_transform, src_shape)
    if src_window is None:
        return out  # wholly outside the layer's extent
    values = read_source(src_window)
    src = _Side(window_transform(src_window, src_transform), src_crs or LOCAL, values.shape)
    dst = _Side(window_transform(window, warp.affine), warp.crs or LOCAL, out.shape)
    if src.transform.is_identity or dst.transform.is_identity:
        with _IDENTITY_LOCK, warnings.catch_warnings():
            # GDAL may store no transform for the identity: rasterio warns; both sides agree
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return _warp(values, src, dst, warp)
    return _warp(values, src, dst, warp)


@dataclass(frozen=True)
class _Side:
    transform: Affine
    crs: CRS
    shape: tuple[int, int]

    def dataset(self) -> Any:
        """An in-memory GDAL dataset of this side (float32, one band)."""
        height, width = self.shape
        return rasterio.open(
            "",
            "w+",
            driver="MEM",
            width=width,
            height=height,
            count=1,
            dtype="float32",
            crs=self.crs,
            transform=self.transform,
        )


# rasterio wraps numpy arrays given to reproject in datasets whose construction switches
# Python's warning filters off and on (warnings.catch_warnings, not thread-safe): two threads
# warping arrays at once leak its NotGeoreferencedWarning and can leave filters switched.
# Datasets made here and given as bands take another path; the identity case alone (where
# rasterio warns on a transform it cannot store) is warped one thread at a time.
_IDENTITY_LOCK = threading.Lock()


def _warp(values: np.ndarray, src: _Side, dst: _Side, warp: Warp) -> np.ndarray:
    with src.dataset() as source, dst.dataset() as destination:
        source.write(values, 1)
        reproject(
            rasterio.band(source, 1),
            rasterio.band(destination, 1),
            src_nodata=np.nan,
            dst_nodata=np.nan,
            resampling=Resampling[warp.resampling],
            num_threads=1,
            **warp.options,
        )
        return destination.read(1)
