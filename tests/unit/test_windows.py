"""Window planning: every window plan tiles the grid and decodes each input block once."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.transform import from_origin

from windowed_classify.inputs.grid import Grid
from windowed_classify.inputs.windows import layer_windows, lcm, plan_windows


def _grid(width: int, height: int) -> Grid:
    return Grid("EPSG:32633", from_origin(0, 0, 1, 1), width, height)


def _coverage(windows, grid: Grid) -> np.ndarray:
    hits = np.zeros((grid.height, grid.width), dtype=np.int32)
    for w in windows:
        r, c, h, wd = int(w.row_off), int(w.col_off), int(w.height), int(w.width)
        assert h > 0 and wd > 0
        hits[r : r + h, c : c + wd] += 1
    return hits


def _blocks_touched(windows, block: tuple[int, int]) -> list[tuple[int, int]]:
    touched = []
    bh, bw = block
    for w in windows:
        r0, c0 = int(w.row_off), int(w.col_off)
        r1, c1 = r0 + int(w.height) - 1, c0 + int(w.width) - 1
        touched += [
            (br, bc) for br in range(r0 // bh, r1 // bh + 1) for bc in range(c0 // bw, c1 // bw + 1)
        ]
    return touched


layouts = st.sampled_from([(16, 16), (32, 32), (64, 64), (256, 256), (512, 512), (1, 0), (8, 0)])


@settings(max_examples=150, deadline=None)
@given(
    width=st.integers(1, 3000),
    height=st.integers(1, 3000),
    blocks=st.lists(layouts, min_size=1, max_size=4),
    max_pixels=st.sampled_from([1, 10_000, 300_000, 5_000_000]),
)
def test_windows_tile_the_grid_and_never_split_a_block(width, height, blocks, max_pixels):
    grid = _grid(width, height)
    # (rows, 0) means striped: the block is rows x the full width.
    shapes = [(bh, bw or width) for bh, bw in blocks]
    windows = plan_windows(grid, shapes, max_pixels)
    assert (_coverage(windows, grid) == 1).all()
    # Bounded by the budget, except that a window is never below one output tile, nor below
    # one full-width band of whole strips when an input is striped.
    unit_rows = min(lcm(*(bh for bh, _ in shapes)), 256)
    largest = max(int(w.width * w.height) for w in windows)
    assert largest <= max(max_pixels, 256 * 256, unit_rows * width)
    if len(set(shapes)) == 1 and max_pixels >= 300_000:
        # One shared layout and room for a full band: every input block is decoded once.
        touched = _blocks_touched(windows, shapes[0])
        assert len(touched) == len(set(touched))
    if all(bw < width for _, bw in shapes):
        for w in windows:  # tiled inputs: windows start on output tiles, written whole
            assert int(w.row_off) % 256 == 0 and int(w.col_off) % 256 == 0


@settings(max_examples=100, deadline=None)
@given(
    width=st.integers(1, 2000),
    height=st.integers(1, 2000),
    block=st.sampled_from([(16, 16), (256, 256), (1, 0), (3, 0), (64, 0)]),
)
def test_pass1_windows_cover_once_and_decode_each_block_once(width, height, block):
    grid = _grid(width, height)
    shape = (block[0], block[1] or width)
    windows = layer_windows(grid, shape)
    assert (_coverage(windows, grid) == 1).all()
    touched = _blocks_touched(windows, shape)
    assert len(touched) == len(set(touched))
