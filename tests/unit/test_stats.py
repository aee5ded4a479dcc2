"""Pass 1's exact statistics (passes/pass1.py), on its own: the guide, the counting of every
layer's blocks against its band in any order (as workers answer), the selection among the
kept keys, and the two-read count of a layer whose median the band missed. The median stays
pandas', bit for bit."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from checks import same_f32
from helpers import make_config, save_model, train_model, write_raster
from medians import median_stack, pandas_median

import windowed_classify.passes.pass1 as pass1
from windowed_classify.config import load_config
from windowed_classify.engines.local import SerialExecutor, ThreadExecutor
from windowed_classify.errors import InputError
from windowed_classify.float_keys import from_key, to_keys
from windowed_classify.passes.band import Band
from windowed_classify.passes.stats import LayerStats
from windowed_classify.prepare import prepare


class Shuffled(SerialExecutor):
    """Answers items in a shuffled order, as workers do."""

    def __init__(self, model: Any, seed: int):
        super().__init__(model)
        self.rng = np.random.default_rng(seed)

    def run(self, job: Any, items: Iterable[Any], pin: Any = None) -> Iterator[Any]:
        items = list(items)
        for i in self.rng.permutation(len(items)):
            yield items[i], job(items[i], self.state)


def counted(folder: Path, tmp: Path, executor: Any = None, seed: int = 0) -> dict[str, LayerStats]:
    """Pass 1 on its own over every layer of ``folder`` (nodata: NaN and each file's tag)."""
    names = sorted(p.stem for p in folder.glob("*.tif"))
    model = train_model(names, {n: np.arange(4.0) for n in names}, ("a", "b"))
    cfg = make_config(folder, save_model(model, tmp / "m.pkl"), tmp / "out" / "o.tif")
    cfg["nodata"] = {"values": [], "threshold": len(names)}
    cfg["processing"] = {"stats_cache": False}
    prep = prepare(load_config(cfg))
    with executor or Shuffled(model, seed) as ex:
        stats = pass1.Statistics(prep, ex, True, "none", tmp)
        found = stats.begin(None)
    assert found is not None and stats.mode == "separate"
    return found


def expected_stats(path: Path) -> tuple[np.float32, int, int]:
    import rasterio

    with rasterio.open(path) as ds:
        values = ds.read(1).astype(np.float32).ravel()
        tag = ds.nodata
    bad = ~np.isfinite(values)
    if tag is not None:
        bad |= values == np.float32(tag)
    return pandas_median(values[~bad]), int((~bad).sum()), int(bad.sum())


def assert_pandas(got: LayerStats, path: Path) -> None:
    median, valid, nodata = expected_stats(path)
    assert np.float32(got.median).view(np.uint32) == median.view(np.uint32), (got, median)
    assert (got.valid_count, got.nodata_count) == (valid, nodata)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_counts_in_any_order_equal_pandas_on_hard_layers(tmp_path: Path, seed: int) -> None:
    """Signed zeros, subnormals, float32 ties, +-3.4e38, lone middle values: bit for bit."""
    folder = tmp_path / "c"
    median_stack(folder, 200, 58)
    for name, got in counted(folder, tmp_path, seed=seed).items():
        assert_pandas(got, folder / f"{name}.tif")


def test_threads_count_as_one_thread_does(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    median_stack(folder, 120, 70)
    model = train_model(["ramp"], {"ramp": np.arange(4.0)}, ("a", "b"))
    alone = counted(folder, tmp_path / "1", SerialExecutor(model))
    together = counted(folder, tmp_path / "2", ThreadExecutor(model, 2))
    for name in alone:
        assert same_f32(alone[name].median, together[name].median), name
        assert alone[name].valid_count == together[name].valid_count


@pytest.mark.parametrize("band", [Band(0x0080, 0x0081), Band(0xFF70, 0xFF7F), Band(0, -1)])
def test_a_band_that_misses_the_median_is_counted_again_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, band: Band
) -> None:
    """A north-south gradient: a band far below, far above or empty misses every median;
    those layers are read twice more by key bits, and the medians stay exact."""
    rng = np.random.default_rng(5)
    rows = np.linspace(-50, 950, 512, dtype=np.float64)[:, None]
    data = (rows + rng.normal(0, 2, (512, 300))).astype(np.float32)
    data[rng.random(data.shape) < 0.05] = np.nan
    write_raster(tmp_path / "c" / "gradient.tif", data, layout=("tiled", 64))
    monkeypatch.setattr(pass1, "band_of", lambda high: band)
    got = counted(tmp_path / "c", tmp_path)["gradient"]
    assert got.second_read
    assert_pandas(got, tmp_path / "c" / "gradient.tif")


def test_a_layer_without_valid_pixels_is_named(tmp_path: Path) -> None:
    write_raster(
        tmp_path / "c" / "empty.tif", np.full((40, 30), -9999.0, np.float32), nodata=-9999.0
    )
    write_raster(tmp_path / "c" / "full.tif", np.ones((40, 30), np.float32))
    with pytest.raises(InputError, match="'empty'.*no valid pixel"):
        counted(tmp_path / "c", tmp_path)


def test_keys_preserve_order_across_signs_and_magnitudes() -> None:
    vals = np.array(
        [-np.inf, -3.4e38, -1.0, -1e-45, -0.0, 0.0, 1e-45, 1.0, 3.4e38, np.inf], dtype=np.float32
    )
    keys = to_keys(vals)
    assert (np.diff(keys.astype(np.int64)) > 0).all()
    back = np.array([from_key(int(k)) for k in keys], dtype=np.float32)
    assert (back.view(np.uint32) == vals.view(np.uint32)).all()
