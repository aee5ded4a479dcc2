"""Pixels under points: which pixel of a grid holds a coordinate, and reads grouped by block
so that only the blocks holding points are read, each once. Shared by ``sample`` (the layers'
values under training points) and ``assess`` (the map's class under reference points)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
from rasterio.windows import Window

from .grid import Grid

MAX_CELL = 256  # a read covers at most this many rows and columns of one block


def pixel_of(grid: Grid, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of the pixel holding each point; a point on an edge goes right and down."""
    inv: Any = ~grid.transform
    cols = inv.a * xs + inv.b * ys + inv.c
    rows = inv.d * xs + inv.e * ys + inv.f
    return np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)


def on_grid(grid: Grid, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """True where (row, col) is a pixel of the grid."""
    return (rows >= 0) & (rows < grid.height) & (cols >= 0) & (cols < grid.width)


def pixel_centres(grid: Grid, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The coordinates of the centres of pixels (row, col), in the grid's CRS."""
    t: Any = grid.transform
    c, r = cols + 0.5, rows + 0.5
    return t.a * c + t.b * r + t.c, t.d * c + t.e * r + t.f


def block_groups(
    grid: Grid, rows: np.ndarray, cols: np.ndarray, block: tuple[int, int]
) -> Iterator[tuple[np.ndarray, Window]]:
    """(indices of the points, the window to read) per block cell that holds points on the grid.

    A cell is the block (at most MAX_CELL on a side); its window is the bounding box of its
    points. Cells come in row-major order, so a reader's block cache only needs a row of
    blocks. Points off the grid are in no group.
    """
    inside = np.flatnonzero(on_grid(grid, rows, cols))
    if not inside.size:
        return
    cell_h = min(MAX_CELL, max(1, block[0]))
    cell_w = min(MAX_CELL, max(1, block[1]))
    cell_of = (rows[inside] // cell_h) * math.ceil(grid.width / cell_w) + cols[inside] // cell_w
    order = np.argsort(cell_of, kind="stable")
    for members in np.split(inside[order], np.flatnonzero(np.diff(cell_of[order])) + 1):
        r, c = rows[members], cols[members]
        r0, c0 = int(r.min()), int(c.min())
        yield members, Window(c0, r0, int(c.max()) - c0 + 1, int(r.max()) - r0 + 1)
