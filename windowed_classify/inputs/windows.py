"""Window planning: which windows pass 1 and pass 2 read, sized so that no input block is
decoded twice and memory stays bounded. Pure functions over shapes."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rasterio.windows import Window

from .grid import Grid

WindowKey = tuple[int, int, int, int]  # col_off, row_off, width, height (picklable, small)


def window_key(window: Window) -> WindowKey:
    return (int(window.col_off), int(window.row_off), int(window.width), int(window.height))


def window_text(window: Window) -> str:
    return (
        f"(col_off={int(window.col_off)}, row_off={int(window.row_off)}, "
        f"width={int(window.width)}, height={int(window.height)})"
    )


def lcm(*values: int) -> int:
    out = 1
    for v in values:
        out = out * v // math.gcd(out, v)
    return out


def plan_windows(
    grid: Grid,
    block_shapes: Sequence[tuple[int, int]],
    max_pixels: int,
    out_block: int = 256,
) -> list[Window]:
    """Windows over the grid so that no input block is decoded twice and memory stays bounded.

    Heights are a multiple of the output's tile size and of every input's block height (when
    that least common multiple is reasonable); widths are the full width when any input is
    striped (so each strip is decoded once), else a multiple of the inputs' common tile width.
    ``max_pixels`` bounds a window's pixel count; windows never go below one output tile.
    """
    heights = [b[0] for b in block_shapes]
    tiled_widths = [b[1] for b in block_shapes if b[1] < grid.width]
    any_striped = len(tiled_widths) < len(block_shapes)
    max_pixels = max(max_pixels, out_block * out_block)

    # The aligned unit: a multiple of every block; fall back to the output tile (and GDAL's
    # block cache) when that unit is unreasonable or does not fit the budget.
    height = lcm(out_block, *heights)
    unit_w = lcm(out_block, *tiled_widths)
    if unit_w > 4 * out_block or out_block * unit_w > max_pixels:
        unit_w = out_block
    if height > 4 * out_block or height * min(unit_w, grid.width) > max_pixels:
        height = out_block

    height = min(height, max(grid.height, 1))
    if any_striped or grid.width <= unit_w:
        width = grid.width  # whole strips, each decoded once: lower the band, never split it
        if width * height > max_pixels:
            unit_h = min(lcm(*heights), out_block)
            height = max(unit_h, (max_pixels // width) // unit_h * unit_h)
    else:
        width = max(unit_w, (max_pixels // height) // unit_w * unit_w)
    width = min(width, grid.width)
    if width >= grid.width:  # a full-width band fits: grow it taller, in whole units
        height *= max(1, max_pixels // (height * grid.width))
        height = min(height, max(grid.height, 1))
    return [
        Window(col, row, min(width, grid.width - col), min(height, grid.height - row))
        for row in range(0, grid.height, height)
        for col in range(0, grid.width, width)
    ]


def layer_windows(grid: Grid, block: tuple[int, int], min_pixels: int = 1 << 16) -> list[Window]:
    """Windows for reading one layer alone (pass 1): whole blocks of at least ``min_pixels``.

    Small windows (a tile, or a few strips) let pass 1 draw a sample spread over the whole
    grid; each block is still decoded exactly once.
    """
    bh, bw = max(block[0], 1), max(block[1], 1)
    if bw >= grid.width:  # striped: bands of whole strips
        rows = bh * max(1, -(-min_pixels // (bh * max(grid.width, 1))))
        return [
            Window(0, r, grid.width, min(rows, grid.height - r))
            for r in range(0, grid.height, rows)
        ]
    cols = bw * max(1, -(-min_pixels // (bh * bw)))  # tiny tiles: several side by side
    return [
        Window(c, r, min(cols, grid.width - c), min(bh, grid.height - r))
        for r in range(0, grid.height, bh)
        for c in range(0, grid.width, cols)
    ]
