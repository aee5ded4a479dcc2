"""Pass 1's exact statistics (passes/stats.py): every stage, every merge order, every fallback.

The counts of tasks merged in any order (as a Dask engine gets them), the held sample, the
scouts and the second read of bins the candidates missed: the median stays pandas', bit for
bit, and only the windows that can hold the median's bin are read again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from checks import same_f32
from helpers import write_raster
from test_median import _median_stack, pandas_median

from windowed_classify.config import NodataConfig, RastersConfig
from windowed_classify.errors import InputError
from windowed_classify.inputs.discover import Source, discover
from windowed_classify.inputs.grid import Grid
from windowed_classify.inputs.layers import Layer, list_bands, open_layers
from windowed_classify.inputs.windows import layer_windows
from windowed_classify.passes import median, stats
from windowed_classify.passes.stats import LayerPlan, LayerStats, compute_stats, count_task, serial


def plan_stats(layer: Layer, grid: Grid, task_pixels: int, seed: int) -> LayerStats:
    """Every stage's tasks counted in a shuffled order, as results arrive from workers."""
    plan = LayerPlan.for_layer(layer, grid, task_pixels=task_pixels)
    rng = np.random.default_rng(seed)
    stages = 0
    while not plan.done:
        tasks = plan.next_tasks()
        stages += 1
        assert stages < 10, "the plan does not finish"
        for i in rng.permutation(len(tasks)):
            t = tasks[i]
            plan.merge(t, count_task(t))
    return plan.result()


def layer_stats(layer: Layer, grid: Grid) -> LayerStats:
    """The statistics a local run computes: every task in order, in this thread."""
    return compute_stats([layer], grid, serial)[layer.name]


def open_folder(folder: Path, nodata: NodataConfig) -> tuple[Grid, list[Layer]]:

    rasters = RastersConfig(folder=folder)
    return open_layers(list_bands(discover(rasters)).bands, nodata, rasters)


def pandas_stats(path: Path, nodata: list[float]) -> tuple[np.float32, int]:
    import rasterio

    with rasterio.open(path) as ds:
        values = ds.read(1).astype(np.float32).ravel()
        tag = ds.nodata
    bad = ~np.isfinite(values)
    for v in [*nodata, *([tag] if tag is not None else [])]:
        bad |= values == np.float32(v)
    return pandas_median(values[~bad]), int((~bad).sum())


def assert_same_stats(got: LayerStats, expected: LayerStats) -> None:
    assert same_f32(got.median, expected.median), (got.median, expected.median)
    assert np.float32(got.median).view(np.uint32) == np.float32(expected.median).view(np.uint32)
    assert same_f32(got.min, expected.min) and same_f32(got.max, expected.max)
    assert (got.valid_count, got.nodata_count) == (expected.valid_count, expected.nodata_count)


@pytest.mark.parametrize("task_pixels", [1, 20_000, 1 << 22])
def test_merged_counts_equal_streaming_stats_on_hard_layers(
    tmp_path: Path, task_pixels: int
) -> None:
    """Signed zeros, subnormals, float32 ties, +-3.4e38, lone middle values: bit for bit."""
    _median_stack(tmp_path, 200, 58)
    nodata = NodataConfig(values=(), threshold=9)
    grid, layers = open_folder(tmp_path, nodata)
    assert len(layers) == 9
    for seed, layer in enumerate(layers):
        got = plan_stats(layer, grid, task_pixels, seed)
        assert_same_stats(got, layer_stats(layer, grid))
        median, valid = pandas_stats(Path(layer.path), [])
        assert same_f32(got.median, median) and got.valid_count == valid, layer.name


def test_merged_counts_when_the_scouts_miss_the_median(tmp_path: Path) -> None:
    """A layer of many windows whose upper middle value is alone in one window that no
    scout reads: the candidate bins miss it, the plan reads that bin again (second_read)."""
    h, w = 8192, 1024
    rng = np.random.default_rng(7)
    lone = np.zeros((h, w), np.float32)
    lone[1::2] = (1e6 + rng.random((h // 2, w)) * 1e6).astype(np.float32)
    lone[65, 5] = 0.5  # the upper middle value (the lower one is 0): median 0.25
    lone[100:140, :] = -9999.0
    write_raster(tmp_path / "lone.tif", lone, nodata=-9999.0, layout=("striped", 16))
    grid, (layer,) = open_folder(tmp_path, NodataConfig(values=()))
    local = layer_stats(layer, grid)
    got = plan_stats(layer, grid, task_pixels=1 << 20, seed=1)
    assert_same_stats(got, local)
    median, valid = pandas_stats(tmp_path / "lone.tif", [])
    assert same_f32(got.median, median) and valid == got.valid_count
    assert got.second_read, "the scouts' candidate bins were expected to miss the median"


def test_a_layer_without_valid_pixels_is_named(tmp_path: Path) -> None:
    write_raster(tmp_path / "empty.tif", np.full((40, 30), -9999.0, np.float32), nodata=-9999.0)
    grid, (layer,) = open_folder(tmp_path, NodataConfig(values=()))
    with pytest.raises(InputError, match="'empty'.*no valid pixel"):
        plan_stats(layer, grid, 1 << 22, 0)


# ----------------------------------------------------------------------------- fallbacks


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

    from windowed_classify.config import NodataConfig
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
    (band,) = list_bands([Source("gradient", path)]).bands
    grid, (layer,) = open_layers([band], NodataConfig(), RastersConfig())
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
