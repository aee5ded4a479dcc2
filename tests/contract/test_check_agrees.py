"""``check`` is the run's own preparation: every user error a run's preparation raises,
``check`` reports (exit 2, in its text and in ``--json``), and a config ``check`` passes gets
past the run's preparation.

The scenarios enumerate the user errors of ``prepare``: one broken config per way it can
refuse (its checks, in the order a run takes them).
"""

from __future__ import annotations

import copy
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from helpers import Case, Unlisted, build_case, run_main, save_model, write_raster, write_yaml
from rasterio.transform import from_origin
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

import windowed_classify
from windowed_classify.errors import UserError

Breaker = Callable[[Case, dict[str, Any]], None]


def _refit(case: Case, model: Any, **config: Any) -> None:
    save_model(model, case.model_path)
    case.config["model"].update(config)


def _fit(features: list[str], y: list[Any], names: bool = True) -> DecisionTreeClassifier:
    import pandas as pd

    x = pd.DataFrame({f: np.arange(len(y), dtype=np.float32) for f in features})
    return DecisionTreeClassifier(random_state=0).fit(x if names else x.to_numpy(), y)


FEATURES = ["elev", "slope", "ndvi"]


def no_model_section(case: Case, cfg: dict[str, Any]) -> None:
    del cfg["model"]


def no_output_section(case: Case, cfg: dict[str, Any]) -> None:
    del cfg["output"]


def output_exists(case: Case, cfg: dict[str, Any]) -> None:
    case.output.write_bytes(b"an earlier run")


def output_folder_under_a_file(case: Case, cfg: dict[str, Any]) -> None:
    (case.root / "afile").write_text("x")
    cfg["output"]["path"] = str(case.root / "afile" / "sub" / "p.tif")


def preview_without_matplotlib(case: Case, cfg: dict[str, Any]) -> None:
    cfg["output"]["preview"] = str(case.root / "out" / "p.png")


def folder_missing(case: Case, cfg: dict[str, Any]) -> None:
    cfg["rasters"]["folder"] = str(case.root / "nowhere")


def folder_is_a_file(case: Case, cfg: dict[str, Any]) -> None:
    cfg["rasters"]["folder"] = str(case.folder / "elev.tif")


def no_rasters(case: Case, cfg: dict[str, Any]) -> None:
    (case.root / "empty").mkdir()
    cfg["rasters"]["folder"] = str(case.root / "empty")


def two_model_layers_one_name(case: Case, cfg: dict[str, Any]) -> None:
    write_raster(case.folder / "sub" / "elev.tif", np.ones((37, 45), np.float32))


def model_missing(case: Case, cfg: dict[str, Any]) -> None:
    cfg["model"]["path"] = str(case.root / "nothing.pkl")


def model_corrupt(case: Case, cfg: dict[str, Any]) -> None:
    case.model_path.write_bytes(b"not a pickle")


def float_output_for_classes(case: Case, cfg: dict[str, Any]) -> None:
    cfg["output"]["dtype"] = "float32"


def scoring_file_missing(case: Case, cfg: dict[str, Any]) -> None:
    cfg["model"]["scoring_file"] = str(case.root / "scoring_file_v_1_0_0.py")


def features_disagree(case: Case, cfg: dict[str, Any]) -> None:
    cfg["model"]["features"] = ["slope", "elev", "ndvi"]


def no_features(case: Case, cfg: dict[str, Any]) -> None:
    save_model(_fit(FEATURES, ["a", "b", "c"], names=False), case.model_path)


def no_classes(case: Case, cfg: dict[str, Any]) -> None:
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    model = DecisionTreeRegressor().fit(x, [1.0, 2.0, 3.0, 4.0])
    model.feature_names_in_ = np.array(FEATURES, dtype=object)
    save_model(model, case.model_path)
    cfg["model"]["task"] = "classification"


def label_codes_of_text(case: Case, cfg: dict[str, Any]) -> None:
    cfg["output"]["codes"] = "label"


def classes_do_not_fit(case: Case, cfg: dict[str, Any]) -> None:
    cfg["model"]["classes"] = ["forest", "water", "urban"] + [f"c{i}" for i in range(300)]


def nodata_collides(case: Case, cfg: dict[str, Any]) -> None:
    cfg["output"]["nodata"] = 1


def output_the_model_cannot_give(case: Case, cfg: dict[str, Any]) -> None:
    cfg["output"]["spread"] = str(case.root / "out" / "spread.tif")


def missing_feature(case: Case, cfg: dict[str, Any]) -> None:
    (case.folder / "ndvi.tif").unlink()


def unreadable_model_layer(case: Case, cfg: dict[str, Any]) -> None:
    (case.folder / "ndvi.tif").write_bytes(b"II*\x00 not a tiff")


def layer_off_the_grid(case: Case, cfg: dict[str, Any]) -> None:
    t = from_origin(0, 0, 10, 10)
    write_raster(case.folder / "slope.tif", np.ones((37, 45), np.float32), transform=t)


def crs_mix(case: Case, cfg: dict[str, Any]) -> None:
    write_raster(case.folder / "slope.tif", np.ones((37, 45), np.float32), crs=None)


def reference_unreadable(case: Case, cfg: dict[str, Any]) -> None:
    cfg["rasters"].update(align=True, reference=str(case.root / "missing.tif"))


def resampling_of_no_layer(case: Case, cfg: dict[str, Any]) -> None:
    cfg["rasters"].update(align=True, resampling={"nosuch": "bilinear"})


def aoa_table_missing(case: Case, cfg: dict[str, Any]) -> None:
    cfg["output"]["di"] = str(case.root / "out" / "di.tif")
    cfg["aoa"] = {"training": str(case.root / "train.csv")}


def classes_lack_one_of_the_model(case: Case, cfg: dict[str, Any]) -> None:
    cfg["model"]["classes"] = ["forest", "water"]


def classes_of_another_type(case: Case, cfg: dict[str, Any]) -> None:
    save_model(_fit(FEATURES, ["10", "20", "30"]), case.model_path)
    cfg["model"]["classes"] = [10, 20, 30]


SCENARIOS: list[Breaker] = [
    no_model_section,
    no_output_section,
    output_exists,
    output_folder_under_a_file,
    preview_without_matplotlib,
    folder_missing,
    folder_is_a_file,
    no_rasters,
    two_model_layers_one_name,
    model_missing,
    model_corrupt,
    float_output_for_classes,
    scoring_file_missing,
    features_disagree,
    no_features,
    no_classes,
    label_codes_of_text,
    classes_do_not_fit,
    nodata_collides,
    output_the_model_cannot_give,
    missing_feature,
    unreadable_model_layer,
    layer_off_the_grid,
    crs_mix,
    reference_unreadable,
    resampling_of_no_layer,
    aoa_table_missing,
    classes_lack_one_of_the_model,
    classes_of_another_type,
]


@pytest.fixture
def no_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name)
    )


@pytest.mark.parametrize("breaker", SCENARIOS, ids=lambda f: f.__name__)
def test_check_reports_every_refusal_of_the_run(
    tmp_path: Path, breaker: Breaker, request: pytest.FixtureRequest
) -> None:
    case = build_case(tmp_path, kind="forest")
    if breaker is preview_without_matplotlib:
        request.getfixturevalue("no_matplotlib")
    cfg = copy.deepcopy(case.config)
    breaker(case, cfg)
    config = write_yaml(tmp_path / "config.yaml", cfg)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))

    with pytest.raises(UserError) as refused:
        windowed_classify.run(config)
    message = str(refused.value)

    text = run_main("check", config)
    assert text.returncode == 2, text.stdout + text.stderr
    assert "NOT READY" in text.stdout and message in text.stdout, (message, text.stdout)
    document = run_main("check", config, "--json")
    assert document.returncode == 2
    assert message in json.loads(document.stdout)["problems"]
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before  # neither the run that refused nor check left anything


GOOD: list[Breaker] = [
    lambda case, cfg: None,
    lambda case, cfg: cfg["rasters"].update(align=True),
    lambda case, cfg: cfg["output"].update(
        probabilities=str(case.root / "out" / "p.tif"), entropy=str(case.root / "out" / "e.tif")
    ),
    lambda case, cfg: cfg["model"].update(classes=["urban", "water", "forest"]),
    lambda case, cfg: cfg["nodata"].update(threshold=1),
]


@pytest.mark.parametrize("variant", range(len(GOOD)))
def test_a_config_check_passes_gets_past_the_preparation(tmp_path: Path, variant: int) -> None:
    case = build_case(tmp_path, kind="forest")
    cfg = copy.deepcopy(case.config)
    GOOD[variant](case, cfg)
    config = write_yaml(tmp_path / "config.yaml", cfg)
    proc = run_main("check", config, "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["ok"], proc.stdout
    report = windowed_classify.run(config)
    assert report["pixel_counts"]


def test_a_model_that_lists_no_classes_is_said_in_check(tmp_path: Path) -> None:
    case = build_case(tmp_path, kind="forest")
    save_model(Unlisted(joblib.load(case.model_path)), case.model_path)
    case.config["model"]["classes"] = ["forest", "water", "urban"]
    proc = run_main("check", case.write_config())
    assert proc.returncode == 0
    assert "does not list its classes: model.classes cannot be checked" in proc.stdout
