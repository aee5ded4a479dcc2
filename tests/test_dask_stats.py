"""Pass 1 in pieces: counts merged in any order (as a Dask engine gets them) are exact.

No cluster here: the tasks a Dask engine would send run in this process, shuffled, in small
groups, so every merge path (scout, rest, a second read of missed bins) is exercised.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from checks import same_f32
from helpers import write_raster
from test_median import _median_stack, pandas_median

from windowed_classify.config import NodataConfig
from windowed_classify.errors import InputError
from windowed_classify.inputs.discover import discover
from windowed_classify.inputs.grid import Grid
from windowed_classify.inputs.layers import Layer, open_layers
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
    from windowed_classify.config import RastersConfig

    rasters = RastersConfig(folder=folder)
    return open_layers(discover(rasters), nodata, rasters)


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
