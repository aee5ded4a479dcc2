"""The area of applicability in a run (#14): DI and AOA equal tests/aoa_reference.py's brute
force over the whole stack, for folds given, random and none, in the local and Dask engines;
the training table made with the tool's own ``sample``; a pixel at a training point has DI 0;
weights act as the formula says; the report; resume; errors before any work."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import rasterio
from aoa_reference import reference_random_folds
from helpers import (
    DEFAULT_TRANSFORM,
    STACK_NAMES,
    make_config,
    run_main,
    save_model,
    simple_stack,
    training_rows,
    write_yaml,
)
from reference import notebook
from reference_outputs import applicability, assert_statistics
from sklearn.ensemble import RandomForestRegressor

import windowed_classify
from windowed_classify.errors import ConfigError

FOLDS = ("none", "column", "random")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A stack, a forest, and a training table sampled with ``sample`` at 150 pixels."""
    root = tmp_path_factory.mktemp("aoa")
    stack = simple_stack(root / "cov", height=300, width=280, names=STACK_NAMES, seed=3)
    stack.write()
    x, y = training_rows(stack)
    model = RandomForestRegressor(n_estimators=5, max_depth=5, random_state=0).fit(x, y)
    model_path = save_model(model, root / "m.pkl")
    rng = np.random.default_rng(7)
    rows, cols = rng.integers(0, 300, 150), rng.integers(0, 280, 150)
    t = DEFAULT_TRANSFORM
    points = pd.DataFrame(
        {
            "plot": [f"p{i:03d}" for i in range(150)],
            "x": t.c + (cols + 0.5) * t.a,
            "y": t.f + (rows + 0.5) * t.e,
            "fold": np.array(["A", "B", "C"])[np.arange(150) % 3],
        }
    )
    points.to_csv(root / "plots.csv", index=False)
    sample_cfg = write_yaml(root / "sample.yaml", {"rasters": {"folder": str(stack.folder)}})
    proc = run_main("sample", sample_cfg, root / "plots.csv", "-o", root / "training.csv")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(root / "training.csv", keep_default_na=False, dtype=str)
    usable = (table[list(STACK_NAMES)] != "").all(axis=1).to_numpy()
    assert 80 < usable.sum() < 150  # some points fell on nodata: dropped with a warning
    train = table.loc[usable, list(STACK_NAMES)].astype(np.float64).to_numpy()
    return {
        "root": root,
        "stack": stack,
        "model": model,
        "model_path": model_path,
        "table": root / "training.csv",
        "train": train,
        "folds": table.loc[usable, "fold"].to_numpy(),
        "rows": rows[usable],
        "cols": cols[usable],
    }


def config(setup: dict[str, Any], out: Path, folds: Any = "none", **aoa: Any) -> dict[str, Any]:
    cfg = make_config(
        setup["stack"].folder,
        setup["model_path"],
        out / "p.tif",
        output={"di": str(out / "di.tif"), "aoa": str(out / "aoa.tif")},
        processing={"memory_mb": 1, "workers": 1},
    )
    cfg["aoa"] = {"training": str(setup["table"]), "folds": folds, **aoa}
    return cfg


def run(cfg: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return windowed_classify.run(cfg, quiet=True, **kwargs)


def band(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


def reference_folds(setup: dict[str, Any], folds: str) -> Any:
    if folds == "column":
        return setup["folds"]
    if folds == "random":
        return reference_random_folds(len(setup["train"]), 4, 11)
    return None


@pytest.mark.parametrize("folds", FOLDS)
def test_di_and_aoa_equal_the_brute_force(
    setup: dict[str, Any], tmp_path: Path, folds: str
) -> None:
    spec = {"none": "none", "column": "fold", "random": {"random": 4}}[folds]
    weights = {"elev": 1.0, "slope": 0.5, "ndvi": 2.0}
    report = run(config(setup, tmp_path, spec, weights=weights, seed=11))
    nb = notebook(setup["stack"].folder, setup["model"], features=STACK_NAMES)
    di, aoa, ref = applicability(
        nb, setup["train"], list(weights.values()), reference_folds(setup, folds)
    )
    got_di, got_aoa = band(tmp_path / "di.tif"), band(tmp_path / "aoa.tif")
    np.testing.assert_allclose(got_di, di, rtol=2e-7, atol=0)  # float32 precision
    np.testing.assert_array_equal(got_aoa, aoa)
    assert (aoa == 0).sum() > 0 and (aoa == 1).sum() > 0  # both sides are met
    summary = report["aoa"]
    assert np.isclose(summary["mean_distance"], ref.mean_distance, rtol=1e-12)
    assert np.isclose(summary["threshold"], ref.threshold, rtol=1e-12)
    assert summary["weights"] == weights and summary["weights_source"] == "given"
    assert summary["training_rows_used"] == len(setup["train"])
    assert summary["training_rows_dropped"] == 150 - len(setup["train"])
    inside, outside = int((aoa == 1).sum()), int((aoa == 0).sum())
    assert (summary["inside_pixels"], summary["outside_pixels"]) == (inside, outside)
    assert summary["inside_share"] == inside / (inside + outside)
    assert_statistics(report["statistics"]["di"], got_di)
    with rasterio.open(tmp_path / "aoa.tif") as ds:
        assert ds.nodata == 255 and ds.colormap(1)[1][:3] == (26, 152, 80)
    assert "paletteEntry" in (tmp_path / "aoa.qml").read_text()


def test_a_pixel_at_a_training_point_has_di_zero(setup: dict[str, Any], tmp_path: Path) -> None:
    run(config(setup, tmp_path))
    di = band(tmp_path / "di.tif")
    assert (di[setup["rows"], setup["cols"]] == 0).all()
    assert (di[di != -9999] > 0).mean() > 0.9


def test_weights_act_as_the_formula_says(setup: dict[str, Any], tmp_path: Path) -> None:
    """Only the ratios matter; a weight of 0 leaves a feature out; equal is all ones."""
    nb = notebook(setup["stack"].folder, setup["model"], features=STACK_NAMES)
    results = {}
    for name, weights in {
        "equal": "equal",
        "scaled": {"elev": 3, "slope": 3, "ndvi": 3},
        "elev_only": {"elev": 1, "slope": 0, "ndvi": 0},
    }.items():
        out = tmp_path / name
        run(config(setup, out, weights=weights))
        results[name] = band(out / "di.tif")
    np.testing.assert_allclose(results["equal"], results["scaled"], rtol=2e-7)
    np.testing.assert_allclose(
        results["elev_only"], applicability(nb, setup["train"], [1, 0, 0])[0], rtol=2e-7
    )
    assert not np.allclose(results["equal"], results["elev_only"])


def test_importance_weights_by_default(setup: dict[str, Any], tmp_path: Path) -> None:
    report = run(config(setup, tmp_path))
    importances = setup["model"].feature_importances_
    assert report["aoa"]["weights_source"] == "importance"
    assert list(report["aoa"]["weights"].values()) == importances.tolist()
    nb = notebook(setup["stack"].folder, setup["model"], features=STACK_NAMES)
    di, aoa, _ = applicability(nb, setup["train"], importances)
    np.testing.assert_array_equal(band(tmp_path / "aoa.tif"), aoa)


@pytest.mark.parametrize("engine", ["processes", "dask"])
def test_every_engine_gives_the_same_maps(
    setup: dict[str, Any], tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    cfg = config(setup, tmp_path, "fold")
    cfg["processing"] = {"memory_mb": 1, "workers": 2, "engine": engine}
    if engine == "dask":
        cfg["processing"]["scheduler"] = request.getfixturevalue("cluster").scheduler.address
    run(cfg)
    nb = notebook(setup["stack"].folder, setup["model"], features=STACK_NAMES)
    importances = setup["model"].feature_importances_
    di, aoa, _ = applicability(nb, setup["train"], importances, setup["folds"])
    np.testing.assert_allclose(band(tmp_path / "di.tif"), di, rtol=2e-7)
    np.testing.assert_array_equal(band(tmp_path / "aoa.tif"), aoa)


def test_di_alone_reports_the_share_inside(setup: dict[str, Any], tmp_path: Path) -> None:
    cfg = config(setup, tmp_path)
    del cfg["output"]["aoa"]
    report = run(cfg)
    di = band(tmp_path / "di.tif")
    valid = di[di != -9999].astype(np.float64)
    assert report["aoa"]["inside_pixels"] == int((valid <= report["aoa"]["threshold"]).sum())
    assert not (tmp_path / "aoa.tif").exists()


def test_resume_continues_di_and_aoa(
    setup: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interrupt: Any
) -> None:
    stack = simple_stack(tmp_path / "cov", height=600, width=560, names=STACK_NAMES, seed=3)
    stack.write()
    whole_cfg = config(setup, tmp_path / "whole", "fold")
    whole_cfg["rasters"]["folder"] = str(stack.folder)
    whole_cfg["processing"]["checkpoint_seconds"] = 0
    whole = run(whole_cfg)
    cfg = config(setup, tmp_path / "resumed", "fold")
    cfg["rasters"]["folder"] = str(stack.folder)
    cfg["processing"]["checkpoint_seconds"] = 0
    interrupt(cfg, 4)
    resumed = run(cfg, resume=True, workers=1)
    for name in ("di.tif", "aoa.tif", "p.tif"):
        np.testing.assert_array_equal(
            band(tmp_path / "whole" / name), band(tmp_path / "resumed" / name)
        )
    for key in ("inside_pixels", "outside_pixels", "threshold", "mean_distance"):
        assert resumed["aoa"][key] == whole["aoa"][key]


def test_a_changed_training_table_refuses_to_resume(
    setup: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interrupt: Any
) -> None:
    stack = simple_stack(tmp_path / "cov", height=600, width=560, names=STACK_NAMES, seed=3)
    stack.write()
    table = tmp_path / "training.csv"
    table.write_text(Path(setup["table"]).read_text())
    cfg = config(setup, tmp_path / "out")
    cfg["rasters"]["folder"] = str(stack.folder)
    cfg["aoa"]["training"] = str(table)
    cfg["processing"]["checkpoint_seconds"] = 0
    interrupt(cfg, 2)
    table.write_text(table.read_text() + "\n")
    with pytest.raises(Exception, match="AOA training table"):
        run(cfg, resume=True, workers=1)


@pytest.mark.parametrize(
    "edit,match",
    [
        ({"drop_aoa": True}, "output.di': the area of applicability needs the training rows"),
        ({"weights": {"elev": 1, "slope": 1}}, "no weight for feature.*'ndvi'"),
        ({"weights": {"elev": 1, "slope": -1, "ndvi": 1}}, "aoa.weights.slope.*>= 0"),
        ({"folds": "block"}, "no column.*'block'"),
        ({"folds": {"random": 1}}, "aoa.folds.random"),
        ({"training": "absent.csv"}, "AOA training table not found"),
    ],
)
def test_bad_aoa_input_is_an_error_before_any_work(
    setup: dict[str, Any], tmp_path: Path, edit: dict[str, Any], match: str
) -> None:
    cfg = config(setup, tmp_path / "out")
    if edit.pop("drop_aoa", False):
        del cfg["aoa"]
    if "training" in edit:
        edit["training"] = str(tmp_path / edit["training"])
    cfg.get("aoa", {}).update(edit)
    with pytest.raises(Exception, match=match) as info:
        run(cfg)
    assert isinstance(info.value, windowed_classify.errors.UserError)
    assert not (tmp_path / "out" / "di.tif").exists() and not (tmp_path / "out").exists()


def test_aoa_section_without_its_outputs_is_ignored_with_a_warning(
    setup: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(setup, tmp_path)
    del cfg["output"]["di"], cfg["output"]["aoa"]
    report = run(cfg)
    assert "aoa" not in report
    assert "used only with output.di or output.aoa" in caplog.text


def test_weights_that_are_not_numbers_are_config_errors(
    setup: dict[str, Any], tmp_path: Path
) -> None:
    cfg = config(setup, tmp_path, weights={"elev": "heavy", "slope": 1, "ndvi": 1})
    with pytest.raises(ConfigError, match="aoa.weights.elev"):
        windowed_classify.load_config(cfg)
