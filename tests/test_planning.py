"""Window planning and the median's fallback path: units the property tests reach only by luck."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.transform import from_origin

from windowed_classify.inputs.grid import Grid
from windowed_classify.inputs.windows import layer_windows, lcm, plan_windows
from windowed_classify.passes import median, stats


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


def _pandas_median(values: np.ndarray) -> np.float32:
    return np.float32(pd.Series(values.astype(np.float64)).median())


def test_median_is_exact_when_the_sample_misleads():
    """A sample far from the median forces the second read; the result is still exact."""
    rng = np.random.default_rng(3)
    low = rng.normal(-1000, 1, 5000).astype(np.float32)  # the sample: all far below
    rest = [rng.normal(50, 20, 7000).astype(np.float32) for _ in range(4)]
    plan = stats.plan_in_memory([low, *rest], held=[0], scouts=[])
    assert plan.result().second_read
    expected = _pandas_median(np.concatenate([low, *rest]))
    assert np.float32(plan.result().median).view(np.uint32) == expected.view(np.uint32)


def test_median_needs_one_read_when_the_sample_is_representative():
    rng = np.random.default_rng(4)
    chunks = [rng.normal(7, 3, 65536).astype(np.float32) for _ in range(40)]
    plan = stats.plan_in_memory(chunks, held=range(10), scouts=[])
    assert not plan.result().second_read
    expected = _pandas_median(np.concatenate(chunks))
    assert np.float32(plan.result().median).view(np.uint32) == expected.view(np.uint32)


@pytest.mark.parametrize(
    "values",
    [
        [1.0],
        [-0.0, -0.0],
        [np.float32(3.4e38), np.float32(3.4e38)],
        [np.float32(-3.4e38), 1.0, np.float32(3.4e38)],
        [1e-45, -1e-45],
    ],
)
def test_median_edge_values(values):
    arr = np.array(values, dtype=np.float32)
    assert stats.exact_median(arr).view(np.uint32) == _pandas_median(arr).view(np.uint32)


def test_keys_preserve_order_across_signs_and_magnitudes():
    vals = np.array(
        [-np.inf, -3.4e38, -1.0, -1e-45, -0.0, 0.0, 1e-45, 1.0, 3.4e38, np.inf], dtype=np.float32
    )
    keys = median.to_keys(vals)
    assert (np.diff(keys.astype(np.int64)) > 0).all()
    back = np.array([median.from_key(int(k)) for k in keys], dtype=np.float32)
    assert (back.view(np.uint32) == vals.view(np.uint32)).all()


def test_second_read_is_exact_and_skips_windows_that_cannot_hold_the_median(
    tmp_path, monkeypatch
) -> None:
    """A one-window sample of a north-south gradient misleads; the second read re-reads only
    the band of windows whose value range holds the median, and the median stays exact."""
    import rasterio

    from windowed_classify.config import NodataConfig, RastersConfig
    from windowed_classify.inputs.layers import open_layers

    size = 2048
    rng = np.random.default_rng(5)
    rows = np.linspace(-50, 950, size, dtype=np.float64)[:, None]
    data = (rows + rng.normal(0, 2, (size, size))).astype(np.float32)
    data[rng.random((size, size)) < 0.05] = np.nan
    path = tmp_path / "gradient.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=size,
        height=size,
        count=1,
        dtype="float32",
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="lzw",
    ) as ds:
        ds.write(data, 1)
    grid, (layer,) = open_layers([("gradient", path)], NodataConfig(), RastersConfig())
    monkeypatch.setattr(stats, "HOLD_PIXELS", 1)  # hold one window only
    reads: list[int] = []
    original = stats.iter_layer_values

    def counting(lay, windows):
        reads.append(len(windows))
        return original(lay, windows)

    monkeypatch.setattr(stats, "iter_layer_values", counting)
    result = stats.compute_stats([layer], grid, stats.serial)[layer.name]
    valid = data[np.isfinite(data)]
    assert np.float32(result.median).view(np.uint32) == _pandas_median(valid).view(np.uint32)
    n_windows = len(layer_windows(grid, layer.block_shape))
    first = int(np.searchsorted(np.cumsum(reads), n_windows)) + 1  # the first-read tasks
    assert sum(reads[:first]) == n_windows  # every window read once...
    assert 0 < sum(reads[first:]) <= n_windows / 4  # ...then only the band holding the median


def test_median_is_exact_when_the_scout_misleads_too():
    """Held sample and scout both far below the rest: every part is counted again."""
    rng = np.random.default_rng(6)
    held = [rng.normal(-1000, 1, 3000).astype(np.float32)]
    scout = [rng.normal(-900, 1, 4000).astype(np.float32) for _ in range(2)]
    rest = [rng.normal(50, 20, 9000).astype(np.float32) for _ in range(3)]
    chunks = [*held, *scout, *rest]
    plan = stats.plan_in_memory(chunks, held=[0], scouts=[1, 2])
    assert plan.result().second_read  # the rest was read again, for the missing bins
    expected = _pandas_median(np.concatenate(chunks))
    assert np.float32(plan.result().median).view(np.uint32) == expected.view(np.uint32)
