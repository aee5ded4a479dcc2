"""One read where one read is enough (issue #13): with nodata.threshold 0 pass 1 is counted
from pass 2's own reads. The output and the report's medians are the same, bit for bit,
whether pass 1 ran first, ran fused, or came from the cache, for thresholds 0, 1 and k, in
every engine, and after an interruption in the fused pass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from checks import assert_run_matches
from helpers import build_case
from reference import reference_from_config
from test_resume import _interrupt_after

import windowed_classify
from windowed_classify.config import RastersConfig
from windowed_classify.inputs.discover import discover
from windowed_classify.inputs.layers import list_bands, open_layers
from windowed_classify.inputs.windows import layer_windows, plan_windows
from windowed_classify.passes.fused import FusedStats
from windowed_classify.passes.stats import compute_stats, serial

ENGINES = {
    "serial": {"workers": 1},
    "threads": {"workers": 2, "engine": "threads"},
    "processes": {"workers": 2, "engine": "processes"},
    "dask": {"workers": 2, "engine": "dask"},
}


def medians(report: dict[str, Any]) -> dict[str, int]:
    """Each layer's median as its float32 bits (0.0 and -0.0 differ)."""
    return {n: int(np.float32(v["median"]).view(np.uint32)) for n, v in report["layers"].items()}


@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("threshold", [0, 1, 2])
def test_fused_separate_and_cached_statistics_give_the_same_run(
    tmp_path: Path, engine: str, threshold: int
) -> None:
    if engine == "dask":
        pytest.importorskip("distributed")
        if threshold == 2:
            pytest.skip("two dask runs are enough: a cluster costs seconds")
    case = build_case(
        tmp_path,
        names=("elev", "slope", "ndvi", "twi"),
        height=83,
        width=71,
        layout=("tiled", 32),
        nodata_fraction=0.15,
        seed=threshold,
    )
    processing = {**ENGINES[engine], "cache_dir": str(tmp_path / "cache")}
    case.config["nodata"]["threshold"] = threshold
    case.config["output"]["overwrite"] = True
    case.config["processing"] = processing
    ref = reference_from_config(case.config)
    first = windowed_classify.run(case.config)
    fused = threshold == 0 and engine in ("serial", "threads")
    assert first["pass1"] == ("fused" if fused else "separate")
    assert first["stats_cache"] == "computed"
    assert_run_matches(first, ref, case.output)
    warm = windowed_classify.run(case.config)
    assert warm["pass1"] == "cache" and warm["stats_cache"] == "used"
    assert_run_matches(warm, ref, case.output)
    apart = windowed_classify.run(case.config, recompute_stats=True, workers=1)
    assert medians(apart) == medians(first) == medians(warm)


@pytest.mark.parametrize("stop_after", [0, 4])
def test_resume_after_an_interruption_in_the_fused_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop_after: int
) -> None:
    case = build_case(tmp_path, height=600, width=520, layout=("tiled", 16), seed=7)
    case.config["processing"] = {"stats_cache": False, "memory_mb": 1}  # many small windows
    ref = reference_from_config(case.config)
    _interrupt_after(monkeypatch, case.config, stop_after)
    journal = case.output.with_name(".prediction.partial.journal.json")
    assert journal.exists()
    assert '"stats": null' in journal.read_text()  # they were being counted by pass 2
    report = windowed_classify.run(case.config, resume=True, workers=1)
    assert report["resumed"] and report["pass1"] == "separate"
    assert_run_matches(report, ref, case.output)


def test_a_median_outside_the_guides_band_is_counted_again_apart(tmp_path: Path) -> None:
    """A guide band far below the median misses it: that layer is counted again on its own
    (pass 1's standalone plan), exactly, and the spill files are gone."""
    from helpers import write_raster

    rows = np.repeat(np.linspace(0, 1000, 1024, dtype=np.float32)[:, None], 256, axis=1)
    write_raster(tmp_path / "c" / "grad.tif", rows, layout=("tiled", 64))
    rasters = RastersConfig(folder=tmp_path / "c")
    from windowed_classify.config import NodataConfig

    grid, layers = open_layers(list_bands(discover(rasters)).bands, NodataConfig(), rasters)
    windows = plan_windows(grid, [layers[0].block_shape], 256 * 256)  # 4 bands of 256 rows
    assert len(windows) == 4
    fused = FusedStats(layers, grid, spill_dir=tmp_path)
    fused.guide(serial)
    fused.counts[0].set_band(0, 1)  # a guide far below the median
    reads: list[int] = []

    def counting(take):  # type: ignore[no-untyped-def]
        for task, counts in serial(take):
            reads.append(len(task.windows))
            yield task, counts

    from windowed_classify.inputs.reader import StackReader

    with StackReader(layers) as reader:
        for window in windows:
            fused.add(window, *reader.read(window))
    stats = fused.finish(counting)[layers[0].name]
    expected = compute_stats(layers, grid, serial)[layers[0].name]
    assert np.float32(stats.median).view(np.uint32) == np.float32(expected.median).view(np.uint32)
    whole = len(layer_windows(grid, layers[0].block_shape))
    assert stats.second_read and sum(reads) >= whole  # every block of the layer, read apart
    assert not list(tmp_path.glob(".statistics.*"))  # the spill files are gone
    assert (stats.valid_count, stats.min, stats.max) == (
        expected.valid_count,
        expected.min,
        expected.max,
    )


def _one_layer(tmp_path: Path, data: np.ndarray, nodata: float | None = None):  # type: ignore[no-untyped-def]
    from helpers import write_raster

    from windowed_classify.config import NodataConfig

    write_raster(tmp_path / "c" / "v.tif", data, layout=("tiled", 64), nodata=nodata)
    rasters = RastersConfig(folder=tmp_path / "c")
    grid, layers = open_layers(list_bands(discover(rasters)).bands, NodataConfig(), rasters)
    return grid, layers


@pytest.mark.parametrize("miss", [False, True])
def test_pass_one_on_its_own_counts_against_the_band_exactly(tmp_path: Path, miss: bool) -> None:
    """The local engines' pass 1 for thresholds above 0 (guide, count_apart, finish) gives
    pandas' median, bit for bit, on values that make keys awkward: zeros of both signs,
    the largest floats, subnormals, many ties (infinities are nodata); a band that
    misses the median is counted again apart."""
    import pandas as pd

    rng = np.random.default_rng(3)
    data = rng.choice(
        np.array([-0.0, 0.0, np.inf, -np.inf, 3.3e38, -3.3e38, 1e-45, -1e-45, 2.5], np.float32),
        size=(300, 260),
    )
    data[rng.random(data.shape) < 0.4] = 0.0
    data[rng.random(data.shape) < 0.3] = -0.0
    data[:40] = rng.standard_normal((40, 260)).astype(np.float32)
    data[rng.random(data.shape) < 0.05] = -9999.0
    grid, layers = _one_layer(tmp_path, data, nodata=-9999.0)
    fused = FusedStats(layers, grid, spill_dir=tmp_path)
    fused.guide(serial)
    if miss:
        fused.counts[0].set_band(0x0080, 0x0081)  # far below the median
    fused.count_apart(serial)
    stats = fused.finish(serial)[layers[0].name]
    valid = data[(data != -9999.0) & np.isfinite(data)]
    expected = np.float32(pd.Series(valid).median())
    assert np.float32(stats.median).view(np.uint32) == expected.view(np.uint32)
    assert (stats.valid_count, stats.nodata_count) == (valid.size, data.size - valid.size)
    extremes = (np.float32(-3.3e38), np.float32(3.3e38))
    assert (stats.min, stats.max) == (valid.min(), valid.max()) == extremes
    assert stats.second_read == miss
    assert not list(tmp_path.glob(".statistics.*"))
