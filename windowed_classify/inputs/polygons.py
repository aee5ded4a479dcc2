"""Polygons as training data: the pixels whose centre lies inside each polygon.

The semantics are ``rasterio.features.rasterize`` with ``all_touched=False`` on the grid; each
polygon is burnt alone (overlapping polygons each get their pixels) in its own bounding window,
in bands of rows of at most ``BAND_PIXELS``, so memory follows the polygons, never the raster.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from rasterio.features import rasterize
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from .grid import Grid

log = logging.getLogger(__name__)

BAND_PIXELS = 1 << 22  # pixels burnt at once (a 4 MB mask)


def polygon_window(grid: Grid, bounds: tuple[float, float, float, float]) -> Window | None:
    """The grid's pixels that a polygon with these bounds (in the grid's CRS) can touch."""
    inv: Any = ~grid.transform
    x0, y0, x1, y1 = bounds
    corners = [(x, y) for x in (x0, x1) for y in (y0, y1)]
    cols = [inv.a * x + inv.b * y + inv.c for x, y in corners]
    rows = [inv.d * x + inv.e * y + inv.f for x, y in corners]
    c0, r0 = max(0, math.floor(min(cols))), max(0, math.floor(min(rows)))
    c1, r1 = min(grid.width, math.ceil(max(cols))), min(grid.height, math.ceil(max(rows)))
    if c1 <= c0 or r1 <= r0:
        return None
    return Window(c0, r0, c1 - c0, r1 - r0)


def burn(geometry: Any, grid: Grid, window: Window) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of the grid's pixels in ``window`` whose centre is inside ``geometry``,
    row-major."""
    width = int(window.width)
    band = max(1, BAND_PIXELS // max(width, 1))
    rows, cols = [], []
    for r in range(int(window.row_off), int(window.row_off + window.height), band):
        h = min(band, int(window.row_off + window.height) - r)
        part = Window(window.col_off, r, width, h)
        mask = rasterize(
            [(geometry, 1)],
            out_shape=(h, width),
            transform=window_transform(part, grid.transform),
            fill=0,
            all_touched=False,
            dtype="uint8",
        )
        rr, cc = np.nonzero(mask)
        rows.append(rr.astype(np.int64) + r)
        cols.append(cc.astype(np.int64) + int(window.col_off))
    return np.concatenate(rows), np.concatenate(cols)


def polygon_pixels(
    geometries: Sequence[Any], grid: Grid, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(polygon index, row, col) of every pixel whose centre is inside a polygon, by polygon
    and row-major within it. Polygons that give no pixel are named in a warning."""
    ids, rows, cols = [], [], []
    outside, empty = [], []
    for i, geometry in enumerate(geometries):
        window = polygon_window(grid, geometry.bounds)
        if window is None:
            outside.append(i)
            continue
        r, c = burn(geometry, grid, window)
        if not r.size:
            empty.append(i)
            continue
        ids.append(np.full(r.size, i, dtype=np.int64))
        rows.append(r)
        cols.append(c)
    for found, why in ((outside, "lie outside the grid"), (empty, "hold no pixel centre")):
        if found:
            shown = ", ".join(map(str, found[:10])) + (", ..." if len(found) > 10 else "")
            log.warning(
                "%d of %d polygon(s) of %s %s and give no row (polygon_id %s)%s",
                len(found),
                len(geometries),
                where,
                why,
                shown,
                "; --polygons centroid gives one row per polygon" if why.startswith("hold") else "",
            )
    if not ids:
        empty_i = np.zeros(0, dtype=np.int64)
        return empty_i, empty_i, empty_i
    return np.concatenate(ids), np.concatenate(rows), np.concatenate(cols)
