"""Pass 1 in one read where one read is enough: counted from pass 2's own reads at nodata
threshold 0 (fused) and, above 0, with the rows that need a fill deferred until the medians
are known (deferred); on its own first when many pixels need a fill or the run resumes
(separate); from the cache. The output and the report's medians are the same, bit for bit,
whichever way, in every engine, after an interruption, and when the guide's band misses a
median."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from checks import assert_run_matches
from helpers import build_case, make_config, save_model, train_model, write_raster
from reference import reference_from_config

import windowed_classify
import windowed_classify.passes.pass1 as pass1
from windowed_classify.passes.band import Band

ENGINES = {
    "serial": {"workers": 1},
    "threads": {"workers": 2, "engine": "threads"},
    "processes": {"workers": 2, "engine": "processes"},
    "dask": {"workers": 2, "engine": "dask"},
}


def medians(report: dict[str, Any]) -> dict[str, int]:
    """Each layer's median as its float32 bits (0.0 and -0.0 differ)."""
    return {n: int(np.float32(v["median"]).view(np.uint32)) for n, v in report["layers"].items()}


def spills_left(folder: Path) -> list[Path]:
    return list(folder.rglob(".statistics.*"))


@pytest.mark.usefixtures("small_guide")
@pytest.mark.parametrize(
    ("threshold", "engine"),
    # two dask runs are enough: each starts a cluster, which costs seconds
    [(t, e) for t in (0, 1, 2) for e in ENGINES if e != "dask" or t < 2],
)
def test_every_way_of_counting_gives_the_same_run(
    tmp_path: Path, engine: str, threshold: int
) -> None:
    case = build_case(
        tmp_path,
        names=("elev", "slope", "ndvi", "twi"),
        height=83,
        width=71,
        layout=("tiled", 32),
        nodata_fraction=0.15,
        seed=threshold,
    )
    case.config["nodata"]["threshold"] = threshold
    case.config["output"].update(overwrite=True, probabilities=str(case.output.with_name("p.tif")))
    case.config["processing"] = {**ENGINES[engine], "cache_dir": str(tmp_path / "cache")}
    ref = reference_from_config(case.config)
    first = windowed_classify.run(case.config)
    if threshold == 0:
        assert first["pass1"] == "fused"
    else:  # the guide's share of pixels that need a fill decides
        expected = "deferred" if first["fill_share"] <= pass1.MAX_DEFERRED else "separate"
        assert first["pass1"] == expected
    assert first["stats_cache"] == "computed"
    assert_run_matches(first, ref, case.output)
    warm = windowed_classify.run(case.config)
    assert warm["pass1"] == "cache" and warm["stats_cache"] == "used"
    assert_run_matches(warm, ref, case.output)
    apart = windowed_classify.run(case.config, recompute_stats=True, workers=1)
    assert medians(apart) == medians(first) == medians(warm)
    assert not spills_left(tmp_path)


@pytest.mark.parametrize(("threshold", "mode"), [(0, "fused"), (1, "deferred")])
@pytest.mark.parametrize("stop_after", [0, 4])
def test_resume_after_an_interruption_while_pass_2_counted(
    tmp_path: Path, interrupt: Any, threshold: int, mode: str, stop_after: int
) -> None:
    case = build_case(tmp_path, height=600, width=520, layout=("tiled", 16), seed=7)
    case.config["nodata"]["threshold"] = threshold
    case.config["processing"] = {"stats_cache": False, "memory_mb": 1}  # many small windows
    ref = reference_from_config(case.config)
    interrupt(case.config, stop_after)
    journal = case.output.with_name(".prediction.partial.journal.json")
    assert journal.exists()
    assert '"stats": null' in journal.read_text()  # they were being counted by pass 2
    report = windowed_classify.run(case.config, resume=True, workers=1)
    assert report["resumed"] and report["pass1"] == "separate"
    assert_run_matches(report, ref, case.output)
    fresh = windowed_classify.run(case.config | {"output": {"path": str(tmp_path / "f.tif")}})
    assert fresh["pass1"] == mode


@pytest.mark.parametrize("threshold", [0, 1])
def test_a_median_outside_the_guides_band_is_counted_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threshold: int
) -> None:
    """A guide band far below every median misses them: the layers are counted again on
    their own (two reads), exactly."""
    case = build_case(tmp_path, height=120, width=90, seed=3)
    case.config["nodata"]["threshold"] = threshold
    case.config["processing"] = {"stats_cache": False, "workers": 2, "engine": "threads"}
    monkeypatch.setattr(pass1, "band_of", lambda high: Band(0, 1))
    report = windowed_classify.run(case.config)
    assert sorted(report["median_second_reads"]) == ["elev", "ndvi", "slope"]
    assert_run_matches(report, reference_from_config(case.config), case.output)
    assert not spills_left(tmp_path)


AWKWARD = np.array([-0.0, 0.0, np.inf, -np.inf, 3.3e38, -3.3e38, 1e-45, -1e-45, 2.5], np.float32)


@pytest.mark.parametrize("miss", [False, True])
@pytest.mark.parametrize("threshold", [0, 1])
def test_medians_of_awkward_values_are_pandas_bit_for_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, miss: bool, threshold: int
) -> None:
    """Zeros of both signs, the largest floats, subnormals, many ties (infinities are nodata),
    counted against a band and, when the band misses, in two reads."""
    rng = np.random.default_rng(3)
    layers = {}
    for name in ("v", "w"):
        data = rng.choice(AWKWARD, size=(300, 260))
        data[rng.random(data.shape) < 0.4] = 0.0
        data[rng.random(data.shape) < 0.3] = -0.0
        data[:40] = rng.standard_normal((40, 260)).astype(np.float32)
        data[rng.random(data.shape) < 0.02] = -9999.0
        write_raster(tmp_path / "c" / f"{name}.tif", data, layout=("tiled", 64), nodata=-9999.0)
        layers[name] = data
    pools = {n: d[np.isfinite(d) & (d != -9999.0)] for n, d in layers.items()}
    model = train_model(list(layers), pools, ("a", "b"))
    cfg = make_config(tmp_path / "c", save_model(model, tmp_path / "m.pkl"), tmp_path / "o.tif")
    cfg["nodata"] = {"threshold": threshold}
    cfg["processing"] = {"stats_cache": False, "workers": 2, "engine": "threads"}
    if miss:
        monkeypatch.setattr(pass1, "band_of", lambda high: Band(0x0080, 0x0081))
    report = windowed_classify.run(cfg)
    for name, data in layers.items():
        valid = data[np.isfinite(data) & (data != -9999.0)]
        expected = np.float32(pd.Series(valid.astype(np.float64)).median())
        got = np.float32(report["layers"][name]["median"])
        assert got.view(np.uint32) == expected.view(np.uint32), name
    assert bool(report["median_second_reads"]) == miss


@pytest.mark.usefixtures("small_guide")
def test_deferred_rows_give_every_output_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deferred rows are predicted late and written into windows already written: every
    output raster and the report's counts equal a run with the medians known first."""
    import rasterio

    case = build_case(tmp_path, kind="forest", height=300, width=260, nodata_fraction=0.08)
    out = case.output.parent
    case.config["nodata"]["threshold"] = 2
    case.config["output"].update(
        probabilities=str(out / "p.tif"),
        confidence=str(out / "c.tif"),
        entropy=str(out / "e.tif"),
        margin=str(out / "m.tif"),
        probabilities_dtype="float32",
        overwrite=True,
    )
    case.config["processing"] = {"stats_cache": False, "memory_mb": 1, "workers": 2}
    deferred = windowed_classify.run(case.config)
    assert deferred["pass1"] == "deferred"
    written = {}
    for path in sorted(out.glob("*.tif")):
        with rasterio.open(path) as ds:
            written[path.name] = ds.read()
    monkeypatch.setattr(pass1, "MAX_DEFERRED", -1.0)  # count first, then fill as they come
    separate = windowed_classify.run(case.config, workers=1)
    assert separate["pass1"] == "separate"
    for name, data in written.items():
        with rasterio.open(out / name) as ds:
            assert np.array_equal(ds.read(), data, equal_nan=True), name
    for key in ("pixel_counts", "masked_pixels", "layers"):
        assert deferred[key] == separate[key]
    assert_run_matches(separate, reference_from_config(case.config), case.output)
