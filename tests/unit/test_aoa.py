"""Area of applicability (Meyer & Pebesma 2021, CAST's trainDI/aoa): the module equals the
brute-force reference in tests/aoa_reference.py, CAST's own test numbers, and a hand-worked
example; the training table is read the way `sample` writes it."""

from __future__ import annotations

import logging
import pickle
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from aoa_reference import reference_aoa, reference_random_folds

from windowed_classify.aoa import (
    AoaModel,
    aoa_threshold,
    build_aoa,
    fit_aoa,
    parse_folds,
    random_folds,
    read_training,
    resolve_weights,
    training_distances,
)
from windowed_classify.errors import ConfigError, InputError, ModelError

FEATURES = ("elev", "slope", "ndvi", "clay")
F32_RTOL = 2.0**-22  # two float32 ulps, relative


def sample_text(value: float | None) -> str:
    """A cell as `sample` writes it: the exact decimal of the float32, empty for nodata."""
    return "" if value is None else repr(float(np.float32(value)))


def write_table(
    path: Path,
    values: np.ndarray,
    features: Sequence[str] = FEATURES,
    extra: dict[str, Sequence[str]] | None = None,
) -> Path:
    """A training CSV like `sample`'s: text columns first, then one column per feature."""
    columns: dict[str, list[str]] = {"id": [f"{i:04d}" for i in range(len(values))]}
    columns.update({k: list(v) for k, v in (extra or {}).items()})
    for j, name in enumerate(features):
        columns[name] = [sample_text(None if np.isnan(v) else v) for v in values[:, j]]
    pd.DataFrame(columns).to_csv(path, index=False)
    return path


def training_rows(n: int, seed: int, p: int = len(FEATURES)) -> np.ndarray:
    """float32 covariates on different scales, a few duplicated rows (ties at distance 0)."""
    rng = np.random.default_rng(seed)
    scales = np.array([300.0, 15.0, 0.3, 40.0])[:p]
    rows = (rng.normal(size=(n, p)) * scales + scales * 3).astype(np.float32)
    rows[n - 2] = rows[1]  # a duplicate
    return rows.astype(np.float64)


def new_rows(train: np.ndarray, m: int, seed: int) -> np.ndarray:
    """Pixels: near, far, and exactly on training rows; float32 as the model sees them."""
    rng = np.random.default_rng(seed + 1000)
    lo, hi = train.min(axis=0), train.max(axis=0)
    span = hi - lo
    rows = rng.uniform(lo - span, hi + span, size=(m, train.shape[1]))
    rows[:5] = train[:5]
    return rows.astype(np.float32)


def assert_f32_equal(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want.astype(np.float32), rtol=F32_RTOL, atol=0)


# ----------------------------------------------------------------------------- reference


@pytest.mark.parametrize("folds", ["column", "random", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_equals_the_brute_force_reference(tmp_path: Path, folds: str, weighted: bool) -> None:
    n = 53  # not a multiple of the block
    train = training_rows(n, seed=3)
    fold_labels = np.array(["a", "b", "c", "d", "e"])[np.arange(n) % 5]
    csv = write_table(tmp_path / "train.csv", train, extra={"cvfold": fold_labels})
    weights = {"elev": 0.7, "slope": 2.5, "ndvi": 0.0, "clay": 1.2} if weighted else "equal"
    spec: object = {"column": "cvfold", "random": {"random": 4}, "none": "none"}[folds]

    model = build_aoa(csv, FEATURES, weights=weights, folds=spec, seed=11, block_rows=8)

    ref_folds = {
        "column": fold_labels,
        "random": reference_random_folds(n, 4, 11),
        "none": None,
    }[folds]
    w = [weights[f] for f in FEATURES] if isinstance(weights, dict) else None
    pixels = new_rows(train, 400, seed=3)
    ref = reference_aoa(train, pixels, w, ref_folds)

    assert model.mean_distance == pytest.approx(ref.mean_distance, rel=1e-12)
    np.testing.assert_allclose(model.train_di, ref.train_di, rtol=1e-12, atol=1e-15)
    assert model.threshold == pytest.approx(ref.threshold, rel=1e-12)
    di, aoa = model.predict(pixels)
    assert_f32_equal(di, ref.di)
    np.testing.assert_array_equal(aoa, ref.aoa)
    assert 0 < aoa.sum() < len(aoa)  # both sides of the threshold are exercised
    np.testing.assert_array_equal(di[:5], 0)  # the pixels equal to training rows


def test_random_folds_are_balanced_and_fixed_by_the_seed() -> None:
    folds = random_folds(23, 4, seed=0)
    np.testing.assert_array_equal(folds, np.random.default_rng(0).permutation(np.arange(23) % 4))
    np.testing.assert_array_equal(np.bincount(folds), [6, 6, 6, 5])
    np.testing.assert_array_equal(random_folds(23, 4, seed=0), folds)
    assert not np.array_equal(random_folds(23, 4, seed=1), folds)


def test_a_resumed_run_gets_the_same_threshold(tmp_path: Path) -> None:
    csv = write_table(tmp_path / "t.csv", training_rows(40, seed=5))
    first = build_aoa(csv, FEATURES, folds={"random": 5}, seed=2)
    again = build_aoa(csv, FEATURES, folds="random: 5", seed=2)
    assert first.threshold == again.threshold
    np.testing.assert_array_equal(first.train_di, again.train_di)


# ----------------------------------------------------------------------------- properties


def test_a_pixel_equal_to_a_training_row_has_di_zero() -> None:
    train = training_rows(30, seed=1)
    model = fit_aoa(train, FEATURES, [1.0, 0.5, 2.0, 1.0], np.arange(30) % 3)
    di, aoa = model.predict(train.astype(np.float32))
    np.testing.assert_array_equal(di, 0)
    np.testing.assert_array_equal(aoa, 1)


def test_a_feature_with_weight_zero_is_ignored() -> None:
    train = training_rows(35, seed=2)
    model = fit_aoa(train, FEATURES, [1.0, 1.0, 0.0, 1.0])
    pixels = new_rows(train, 100, seed=2)
    moved = pixels.copy()
    moved[:, 2] = np.float32(1e6)  # far outside the training range of 'ndvi'
    np.testing.assert_array_equal(model.di(moved), model.di(pixels))
    # ... and it is the DI of a model without that feature
    others = [0, 1, 3]
    without = fit_aoa(train[:, others], [FEATURES[j] for j in others])
    np.testing.assert_allclose(model.distances(pixels), without.distances(pixels[:, others]))
    assert model.threshold == pytest.approx(without.threshold, rel=1e-12)


def test_weights_change_the_di_as_expected() -> None:
    train = training_rows(40, seed=4)
    pixels = new_rows(train, 60, seed=4)
    equal = fit_aoa(train, FEATURES)
    heavy = fit_aoa(train, FEATURES, [1.0, 1.0, 1.0, 10.0])
    assert not np.allclose(equal.distances(pixels), heavy.distances(pixels))
    # a pixel off the training rows in 'clay' only moves further out when clay weighs more
    probe = np.repeat(train[:1], 2, axis=0)
    probe[1, 3] += 3 * train[:, 3].std(ddof=1)
    assert heavy.distances(probe)[1] > equal.distances(probe)[1]
    # one feature weighted, the others 0: the DI of that feature alone
    only = fit_aoa(train, FEATURES, [0.0, 3.0, 0.0, 0.0])
    alone = fit_aoa(train[:, [1]], ["slope"])
    np.testing.assert_allclose(only.distances(pixels), alone.distances(pixels[:, [1]]))


def test_doubling_every_weight_leaves_the_di_unchanged() -> None:
    train = training_rows(45, seed=6)
    pixels = new_rows(train, 300, seed=6)
    w = np.array([0.3, 1.7, 0.0, 0.9])
    one = fit_aoa(train, FEATURES, w, np.arange(45) % 4)
    two = fit_aoa(train, FEATURES, 2 * w, np.arange(45) % 4)
    assert_f32_equal(two.di(pixels), one.distances(pixels))
    np.testing.assert_allclose(two.train_di, one.train_di, rtol=1e-12)
    assert two.threshold == pytest.approx(one.threshold, rel=1e-12)
    np.testing.assert_array_equal(two.predict(pixels)[1], one.predict(pixels)[1])


@pytest.mark.parametrize("block", [1, 3, 7, 23, 24, 100])
def test_blockwise_mean_distance_equals_brute_force(block: int) -> None:
    rng = np.random.default_rng(block)
    z = rng.normal(size=(23, 3))
    z[5] = z[9]  # a tie at distance 0
    folds = np.arange(23) % 3
    full = np.sqrt(((z[:, None] - z[None]) ** 2).sum(-1))
    nearest, dbar = training_distances(z, folds, block_rows=block)
    assert dbar == pytest.approx(full[np.triu_indices(23, 1)].mean(), rel=1e-13)
    masked = np.where(folds[:, None] == folds[None], np.inf, full)
    np.testing.assert_allclose(nearest, masked.min(axis=1), rtol=1e-13)
    nearest_all, _ = training_distances(z, None, block_rows=block)
    np.fill_diagonal(full, np.inf)
    np.testing.assert_allclose(nearest_all, full.min(axis=1), rtol=1e-13)
    assert nearest_all[5] == 0 and nearest_all[9] == 0  # a duplicate is another row


def test_threshold_is_the_numpy_formula_capped_at_the_largest_di() -> None:
    rng = np.random.default_rng(0)
    di = np.concatenate([rng.uniform(0.1, 0.4, 50), [3.0]])  # one outlier beyond the fence
    q1, q3 = np.quantile(di, [0.25, 0.75])
    assert aoa_threshold(di) == q3 + 1.5 * (q3 - q1) < di.max()
    assert aoa_threshold(np.array([0.5, 0.5, 1.0])) == 1.0  # fence 1.125, capped


# ----------------------------------------------------------------------------- worked examples


def test_hand_worked_example_without_and_with_folds() -> None:
    # x = 0, 1, 3: pairs 1, 3, 2 -> d̄ = 2 (in units of sd, which cancels)
    train = np.array([[0.0], [1.0], [3.0]])
    model = fit_aoa(train, ["x"])
    assert model.mean_distance * np.sqrt(7 / 3) == pytest.approx(2.0)  # sd = sqrt(7/3)
    np.testing.assert_allclose(model.train_di, [0.5, 0.5, 1.0])
    # quantiles (type 7) 0.5 and 0.75: fence 0.75 + 1.5 * 0.25 = 1.125, capped at 1.0
    assert model.threshold == pytest.approx(1.0)
    di, aoa = model.predict(np.array([[2.0], [4.9], [5.5], [-0.5]]))
    np.testing.assert_allclose(di, [0.5, 0.95, 1.25, 0.25], rtol=1e-6)
    np.testing.assert_array_equal(aoa, [1, 1, 0, 1])
    # a DI equal to the threshold is inside (CAST: outside only when DI > threshold)
    at = np.array([model.threshold, np.nextafter(model.threshold, 2.0)])
    np.testing.assert_array_equal(model.inside(at), [True, False])

    # folds a, a, b: nearest in another fold 3, 2, 2 -> DI 1.5, 1, 1; fence 1.625 -> 1.5
    folded = fit_aoa(train, ["x"], folds=["a", "a", "b"])
    np.testing.assert_allclose(folded.train_di, [1.5, 1.0, 1.0])
    assert folded.threshold == pytest.approx(1.5)
    assert folded.mean_distance == model.mean_distance  # d̄ ignores folds


# CAST 1.1.0 tests/testthat/test-aoa.R, "AOA works without a trained model": the first 30
# cookfarm plots (sorted SOURCEID, mean position), predictors_2012-03-25.tif sampled under
# them; variables DEM, NDRE.Sd, TWI; no weights, no folds. CAST expects the threshold
# 0.52872 (rounded to 5 places). Over that raster (3865 valid pixels) this module also gives
# CAST's 3377 pixels inside and its DI summary 0 / 0.1759 / 0.2642 / 0.3109 / 0.4051 / 2.6631
# (checked when this test was written; the raster is not kept here).
CAST_COOKFARM = np.array(
    [
        (788.1906127929688, 0.25068989396095276, 4.304258346557617),
        (788.38134765625, 0.17546230554580688, 3.863605260848999),
        (790.5243530273438, 0.22257845103740692, 3.9474875926971436),
        (775.722900390625, 0.20998451113700867, 5.395786285400391),
        (796.7618408203125, 0.2002645581960678, 3.534822463989258),
        (795.8370361328125, 0.21806056797504425, 3.8155159950256348),
        (792.7387084960938, 0.33022359013557434, 3.8386573791503906),
        (796.300537109375, 0.33750295639038086, 4.417290210723877),
        (804.9501953125, 0.31636813282966614, 3.74079966545105),
        (793.0969848632812, 0.21289464831352234, 3.293105125427246),
        (797.79736328125, 0.1598898023366928, 3.390660524368286),
        (774.4978637695312, 0.2569572925567627, 5.844510078430176),
        (811.6886596679688, 0.4126094579696655, 3.8399598598480225),
        (781.71044921875, 0.2592305839061737, 4.274658203125),
        (785.7306518554688, 0.2019660770893097, 3.8477113246917725),
        (790.7802124023438, 0.15657979249954224, 3.6436047554016113),
        (795.53662109375, 0.27142760157585144, 3.4812748432159424),
        (805.8731689453125, 0.2969886362552643, 4.373156547546387),
        (810.9310913085938, 0.2694210410118103, 3.969838857650757),
        (800.2933349609375, 0.3104551434516907, 3.7119171619415283),
        (813.023681640625, 0.3322543203830719, 3.8437583446502686),
        (812.2609252929688, 0.30703234672546387, 4.019693374633789),
        (779.6472778320312, 0.15113618969917297, 6.136501312255859),
        (784.853759765625, 0.2610694468021393, 4.244037628173828),
        (790.1691284179688, 0.18208159506320953, 3.979469060897827),
        (804.5726928710938, 0.25883492827415466, 3.6891725063323975),
        (809.8571166992188, 0.38481780886650085, 3.4899961948394775),
        (790.698974609375, 0.25214114785194397, 3.650576591491699),
        (798.2818603515625, 0.12821651995182037, 3.4633309841156006),
        (802.5697021484375, 0.40459540486335754, 3.788776397705078),
    ]
)


def test_cast_cookfarm_threshold(tmp_path: Path) -> None:
    names = ("DEM", "NDRE.Sd", "TWI")
    csv = write_table(tmp_path / "cookfarm.csv", CAST_COOKFARM, names)
    model = build_aoa(csv, names, weights="equal", folds="none")
    assert round(model.threshold, 5) == 0.52872
    # CAST's test of the same data: colMeans(DI$train)
    np.testing.assert_allclose(model.mean, [795.4426351, 0.2577245, 4.0277978], rtol=1e-7)
    ref = reference_aoa(CAST_COOKFARM, CAST_COOKFARM[:1])
    assert model.threshold == pytest.approx(ref.threshold, rel=1e-12)


# ----------------------------------------------------------------------------- the model object


def test_pickle_round_trip_gives_identical_di() -> None:
    train = training_rows(50, seed=8)
    pixels = new_rows(train, 200, seed=8)
    model = fit_aoa(train, FEATURES, [1.0, 2.0, 0.5, 1.0], np.arange(50) % 5)
    before = model.di(pixels)  # builds the tree
    assert model._tree is not None
    blob = pickle.dumps(model)
    clone = pickle.loads(blob)
    assert clone._tree is None  # the tree is not shipped; each process builds its own
    np.testing.assert_array_equal(clone.di(pixels), before)
    assert clone.threshold == model.threshold
    np.testing.assert_array_equal(clone.predict(pixels)[1], model.predict(pixels)[1])
    assert len(blob) < model.train.nbytes + 4 * 4096  # the training matrix plus small change


def test_concurrent_calls_share_one_tree() -> None:
    train = training_rows(60, seed=9)
    pixels = new_rows(train, 500, seed=9)
    model = pickle.loads(pickle.dumps(fit_aoa(train, FEATURES)))
    chunks = np.array_split(pixels, 8)
    with ThreadPoolExecutor(max_workers=4) as pool:
        parts = list(pool.map(model.di, chunks))
    tree = model._tree
    np.testing.assert_array_equal(np.concatenate(parts), model.di(pixels))
    assert model._tree is tree


def test_float32_and_float64_rows_give_the_same_di() -> None:
    train = training_rows(30, seed=10)
    model = fit_aoa(train, FEATURES)
    pixels = new_rows(train, 50, seed=10)
    np.testing.assert_array_equal(model.di(pixels), model.di(pixels.astype(np.float64)))


def test_a_non_finite_row_has_nan_di_and_is_outside() -> None:
    train = training_rows(30, seed=12)
    model = fit_aoa(train, FEATURES, [1.0, 1.0, 0.0, 1.0])
    pixels = np.repeat(train[:1], 3, axis=0).astype(np.float32)
    pixels[1, 0] = np.nan
    pixels[2, 2] = np.inf  # also in a feature of weight 0, as CAST's NA would
    di, aoa = model.predict(pixels)
    assert di[0] == 0 and np.isnan(di[1]) and np.isnan(di[2])
    np.testing.assert_array_equal(aoa, [1, 0, 0])
    assert model.di(np.empty((0, 4), np.float32)).shape == (0,)
    with pytest.raises(ValueError, match="4 features"):
        model.di(pixels[:, :3])


def test_summary_for_the_report(tmp_path: Path) -> None:
    train = training_rows(20, seed=13)
    train[3, 1] = np.nan
    csv = write_table(tmp_path / "t.csv", train, extra={"f": list("ab" * 10)})
    model = build_aoa(csv, FEATURES, importances=[0.4, 0.3, 0.2, 0.1], folds="f")
    s = model.summary()
    assert s["weights"] == {"elev": 0.4, "slope": 0.3, "ndvi": 0.2, "clay": 0.1}
    assert s["weights_source"] == "importance"
    assert s["training_rows_used"] == 19 and s["training_rows_dropped"] == 1
    assert s["folds"] == "column 'f' (2 folds)"
    assert s["threshold"] == model.threshold and s["mean_distance"] == model.mean_distance
    assert s["training_di"]["max"] == float(model.train_di.max())
    assert s["constant_features"] == []
    assert isinstance(model, AoaModel)


# ----------------------------------------------------------------------------- choices


def test_a_constant_feature_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    train = training_rows(25, seed=14)
    train[:, 2] = 0.25
    pixels = new_rows(training_rows(25, seed=14), 40, seed=14)
    with caplog.at_level(logging.WARNING):
        model = fit_aoa(train, FEATURES)
    assert "ndvi" in caplog.text and "constant" in caplog.text
    others = [0, 1, 3]
    without = fit_aoa(train[:, others], [FEATURES[j] for j in others])
    np.testing.assert_allclose(model.distances(pixels), without.distances(pixels[:, others]))
    ref = reference_aoa(train, pixels)
    np.testing.assert_array_equal(model.predict(pixels)[1], ref.aoa)
    assert model.summary()["constant_features"] == ["ndvi"]


def test_identical_training_rows_are_an_error() -> None:
    train = np.ones((5, 2))
    with pytest.raises(InputError, match="constant"):
        fit_aoa(train, ["a", "b"])
    train[:, 1] = [1, 2, 3, 4, 5]
    with pytest.raises(InputError, match="weight > 0 is constant.*constant: a"):
        fit_aoa(train, ["a", "b"], [1.0, 0.0])


def test_duplicates_in_the_same_fold_are_not_neighbours() -> None:
    train = np.array([[0.0], [0.0], [1.0], [4.0]])
    none = fit_aoa(train, ["x"])
    assert none.train_di[0] == 0 and none.train_di[1] == 0
    folded = fit_aoa(train, ["x"], folds=[1, 1, 2, 2])
    assert folded.train_di[0] > 0 and folded.train_di[1] > 0


# ----------------------------------------------------------------------------- the table


def test_rows_with_an_empty_value_are_dropped_with_a_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    train = training_rows(12, seed=15)
    train[2, 0] = train[5, 3] = train[5, 1] = np.nan
    csv = write_table(tmp_path / "t.csv", train)
    text = csv.read_text().splitlines()
    cells = text[10].split(",")
    cells[2] = " NA "  # data row 10, 'slope', as R writes a missing value
    text[10] = ",".join(cells)
    csv.write_text("\n".join(text) + "\n")
    with caplog.at_level(logging.WARNING):
        table = read_training(csv, FEATURES)
    assert "3 of 12 row(s)" in caplog.text and "data rows 3, 6, 10" in caplog.text
    assert table.dropped == 3 and table.total == 12
    keep = np.setdiff1d(np.arange(12), [2, 5, 9])
    np.testing.assert_array_equal(table.rows, keep + 1)
    np.testing.assert_array_equal(table.values, train[keep])


def test_sample_decimals_come_back_exactly_and_others_as_float32(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,other\n0.1,2,x\n788.1906127929688,-3.5e2,\n1e-3,7,y\n")
    table = read_training(csv, ["b", "a"])  # the model's order, not the file's
    want = np.array([[2, 0.1], [-350, 788.1906127929688], [7, 1e-3]], dtype=np.float32)
    np.testing.assert_array_equal(table.values, want.astype(np.float64))


def test_geopackage_gives_the_same_model_as_csv(tmp_path: Path) -> None:
    geopandas = pytest.importorskip("geopandas")
    from shapely.geometry import Point

    train = training_rows(20, seed=16)
    train[4, 2] = np.nan
    csv = write_table(tmp_path / "t.csv", train, extra={"fold": [str(i % 3) for i in range(20)]})
    frame = pd.DataFrame(train.astype(np.float32), columns=list(FEATURES))
    frame["fold"] = np.arange(20) % 3
    gdf = geopandas.GeoDataFrame(frame, geometry=[Point(i, i) for i in range(20)], crs="EPSG:32633")
    gpkg = tmp_path / "t.gpkg"
    gdf.to_file(gpkg, driver="GPKG")
    from_csv = build_aoa(csv, FEATURES, folds="fold")
    from_gpkg = build_aoa(gpkg, FEATURES, folds="fold")
    np.testing.assert_array_equal(from_gpkg.train, from_csv.train)
    assert from_gpkg.threshold == from_csv.threshold
    assert from_gpkg.rows_dropped == 1


def test_a_geopackage_without_geopandas_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "geopandas", None)  # import fails
    gpkg = tmp_path / "t.gpkg"
    gpkg.write_bytes(b"not read")
    with pytest.raises(InputError, match=r'pip install "windowed_classify\[vector\]"'):
        read_training(gpkg, FEATURES)


def test_a_training_table_made_by_sample(tmp_path: Path) -> None:
    """The tool's own `sample` writes the table; each sampled pixel then has DI 0."""
    from helpers import DEFAULT_TRANSFORM, build_case, run_cli

    case = build_case(tmp_path, height=30, width=30)
    rng = np.random.default_rng(0)
    cols, rows = rng.integers(0, 30, 40), rng.integers(0, 30, 40)
    xs = DEFAULT_TRANSFORM.c + (cols + 0.5) * DEFAULT_TRANSFORM.a
    ys = DEFAULT_TRANSFORM.f + (rows + 0.5) * DEFAULT_TRANSFORM.e
    points = tmp_path / "plots.csv"
    pd.DataFrame({"plot": [f"P{i:03d}" for i in range(40)], "x": xs, "y": ys}).to_csv(
        points, index=False
    )
    table = tmp_path / "plots_covariates.csv"
    proc = run_cli("sample", case.write_config(), points, "-o", table)
    assert proc.returncode == 0, proc.stderr

    features = list(case.model.feature_names_in_)
    model = build_aoa(table, features, importances=case.model.feature_importances_)
    layers = {s.name: s.data.astype(np.float32) for s in case.stack.layers}
    pixels = np.stack([layers[f][rows, cols] for f in features], axis=1)
    usable = (np.isfinite(pixels) & (np.abs(pixels) < 1e30) & (pixels != -9999)).all(axis=1)
    assert model.summary()["training_rows_used"] == usable.sum() > 10
    di = model.di(pixels[usable])
    np.testing.assert_array_equal(di, 0)
    ref = reference_aoa(pixels[usable], pixels[usable], case.model.feature_importances_)
    assert model.threshold == pytest.approx(ref.threshold, rel=1e-12)


# ----------------------------------------------------------------------------- errors


def test_weight_errors_name_the_feature() -> None:
    with pytest.raises(ConfigError, match="'clay'"):
        resolve_weights({"elev": 1, "slope": 1, "ndvi": 1}, FEATURES)
    with pytest.raises(ConfigError, match="'ph'"):
        resolve_weights({"elev": 1, "slope": 1, "ndvi": 1, "clay": 1, "ph": 2}, FEATURES)
    with pytest.raises(ConfigError, match="'slope'.*>= 0"):
        resolve_weights({"elev": 1, "slope": -0.5, "ndvi": 1, "clay": 1}, FEATURES)
    with pytest.raises(ConfigError, match="'ndvi'.*not a number"):
        resolve_weights({"elev": 1, "slope": 1, "ndvi": "high", "clay": 1}, FEATURES)
    with pytest.raises(ConfigError, match="every weight is 0"):
        resolve_weights(dict.fromkeys(FEATURES, 0), FEATURES)
    with pytest.raises(ModelError, match="feature_importances_"):
        resolve_weights("importance", FEATURES, None)
    with pytest.raises(ModelError, match="3 feature importances for 4"):
        resolve_weights("importance", FEATURES, [0.2, 0.3, 0.5])
    with pytest.raises(ConfigError, match="'ranked'"):
        resolve_weights("ranked", FEATURES)


def test_weight_defaults() -> None:
    w, source = resolve_weights(None, FEATURES, np.array([0.1, 0.2, 0.3, 0.4]))
    np.testing.assert_array_equal(w, [0.1, 0.2, 0.3, 0.4])
    assert source == "importance"
    w, source = resolve_weights(None, FEATURES, None)
    np.testing.assert_array_equal(w, 1.0)
    assert source == "equal"


def test_a_single_fold_is_an_error_naming_the_column(tmp_path: Path) -> None:
    csv = write_table(tmp_path / "t.csv", training_rows(10, 17), extra={"cv": ["1"] * 10})
    with pytest.raises(InputError, match="column 'cv' holds a single fold \\('1'\\)"):
        build_aoa(csv, FEATURES, folds="cv")


def test_an_empty_fold_cell_is_an_error(tmp_path: Path) -> None:
    folds = ["1", "2"] * 5
    folds[6] = ""
    csv = write_table(tmp_path / "t.csv", training_rows(10, 18), extra={"cv": folds})
    with pytest.raises(InputError, match="'cv' is empty in 1 usable row\\(s\\) \\(data rows 7\\)"):
        build_aoa(csv, FEATURES, folds="cv")


def test_missing_columns_are_named_together(tmp_path: Path) -> None:
    csv = write_table(tmp_path / "t.csv", training_rows(10, 19)[:, :2], FEATURES[:2])
    with pytest.raises(InputError, match="no column\\(s\\) 'ndvi', 'clay', 'cv'"):
        read_training(csv, FEATURES, fold_column="cv")


def test_a_value_that_is_not_a_number_names_column_and_row(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("a,b\n1,2\n3,abc\n5,6\n7,1e39\n")
    with pytest.raises(InputError, match="column 'b' has 2 value.*row 2: 'abc'.*row 4: '1e39'"):
        read_training(csv, ["a", "b"])


def test_fewer_than_two_usable_rows_is_an_error(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("a,b\n1,2\n3,\n")
    with pytest.raises(InputError, match="1 usable row\\(s\\) of 2"):
        read_training(csv, ["a", "b"])
    with pytest.raises(InputError, match="not found"):
        read_training(tmp_path / "absent.csv", ["a"])


def test_folds_spec() -> None:
    assert parse_folds(None) == ("none", None)
    assert parse_folds("None") == ("none", None)
    assert parse_folds({"random": 5}) == ("random", 5)
    assert parse_folds("random: 3") == ("random", 3)
    assert parse_folds("spatial_block") == ("column", "spatial_block")
    for bad in ({"random": 1}, {"random": True}, {"random": 2.5}, {"k": 3}, "", 3):
        with pytest.raises(ConfigError, match="aoa.folds"):
            parse_folds(bad)


def test_random_folds_errors(tmp_path: Path) -> None:
    csv = write_table(tmp_path / "t.csv", training_rows(6, 20))
    with pytest.raises(InputError, match="7 folds for 6 usable"):
        build_aoa(csv, FEATURES, folds={"random": 7})
    with pytest.raises(ConfigError, match="aoa.seed"):
        build_aoa(csv, FEATURES, folds={"random": 2}, seed=-1)
