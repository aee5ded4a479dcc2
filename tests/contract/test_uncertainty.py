"""Per-pixel uncertainty (#14): a forest's spread, a quantile forest's quantiles, class entropy
and margin, each equal to its formula on the notebook's rows over the whole stack; resume and
COG keep them; a model that cannot give one is an error before any work."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from helpers import (
    STACK_NAMES,
    build_case,
    make_config,
    save_model,
    simple_stack,
    training_rows,
)
from quantile_forest import RandomForestQuantileRegressor
from reference import notebook
from reference_outputs import (
    assert_statistics,
    encoded,
    entropy_formula,
    legend_probabilities,
    margin_formula,
    quantiles,
    regression,
    spread,
)
from sklearn.ensemble import BaggingRegressor, ExtraTreesRegressor, RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

import windowed_classify
from windowed_classify.errors import ModelError

LEVELS = [0.05, 0.5, 0.95]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Any:
    stack = simple_stack(
        tmp_path_factory.mktemp("unc") / "cov", height=200, width=180, names=STACK_NAMES
    )
    stack.write()
    return stack


def run(config: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return windowed_classify.run(config, quiet=True, **kwargs)


def bands(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


MODELS = {
    "random_forest": lambda: RandomForestRegressor(n_estimators=7, max_depth=6, random_state=0),
    "extra_trees": lambda: ExtraTreesRegressor(n_estimators=5, max_depth=5, random_state=0),
    "bagging_subsets": lambda: BaggingRegressor(n_estimators=6, max_features=2, random_state=0),
    "pipeline": lambda: make_pipeline(
        StandardScaler(), RandomForestRegressor(n_estimators=4, random_state=1)
    ),
    "quantile_forest": lambda: RandomForestQuantileRegressor(
        n_estimators=6, max_depth=6, random_state=0
    ),
}


@pytest.mark.parametrize("engine", ["serial", "processes"])
@pytest.mark.parametrize("kind", list(MODELS))
def test_spread_is_the_std_of_the_members(
    stack: Any, tmp_path: Path, kind: str, engine: str
) -> None:
    x, y = training_rows(stack)
    model = MODELS[kind]().fit(x, y)
    processing = {"memory_mb": 1, "workers": 1 if engine == "serial" else 2, "engine": engine}
    if engine == "serial":
        processing.pop("engine")
    out = {"spread": str(tmp_path / "spread.tif")}
    if kind == "quantile_forest":
        out["quantiles"] = {"path": str(tmp_path / "q.tif"), "levels": LEVELS}
    cfg = make_config(
        stack.folder,
        save_model(model, tmp_path / "m.pkl"),
        tmp_path / "p.tif",
        output=out,
        processing=processing,
    )
    report = run(cfg)
    nb = notebook(stack.folder, model, features=STACK_NAMES)
    got = bands(tmp_path / "spread.tif")[0]
    np.testing.assert_array_equal(got, spread(nb, model))
    np.testing.assert_array_equal(bands(tmp_path / "p.tif")[0], regression(nb, model))
    assert_statistics(report["statistics"]["spread"], got)
    assert (tmp_path / "spread.qml").exists() and (tmp_path / "spread.tif.aux.xml").exists()
    if kind == "quantile_forest":
        q = bands(tmp_path / "q.tif")
        np.testing.assert_array_equal(q, quantiles(nb, model, LEVELS))
        for level, band in zip(LEVELS, q, strict=True):
            assert_statistics(report["statistics"]["quantiles"][f"{level:g}"], band)
        with rasterio.open(tmp_path / "q.tif") as ds:
            assert ds.descriptions == ("quantile 0.05", "quantile 0.5", "quantile 0.95")
            assert [ds.tags(i)["quantile"] for i in (1, 2, 3)] == ["0.05", "0.5", "0.95"]
            assert ds.nodata == -9999


def test_one_quantile_level_and_the_default_levels(stack: Any, tmp_path: Path) -> None:
    x, y = training_rows(stack)
    model = MODELS["quantile_forest"]().fit(x, y)
    path = save_model(model, tmp_path / "m.pkl")
    nb = notebook(stack.folder, model, features=STACK_NAMES)
    for levels, given in (([0.5], {"levels": [0.5]}), (LEVELS, {})):
        out = tmp_path / f"q{len(levels)}.tif"
        cfg = make_config(
            stack.folder,
            path,
            tmp_path / f"p{len(levels)}.tif",
            output={"quantiles": {"path": str(out), **given}},
            processing={"workers": 1},
        )
        run(cfg)
        np.testing.assert_array_equal(bands(out), quantiles(nb, model, levels))


@pytest.mark.parametrize(
    "output,model_kind,match",
    [
        ("spread", "linear", "not a tree ensemble: supported are scikit-learn's forest"),
        ("quantiles", "random_forest", "not a quantile forest: supported are quantile-forest"),
        ("quantiles", "linear", r"windowed_classify\[quantile\]"),
    ],
)
def test_unsupported_uncertainty_is_an_error_before_any_work(
    stack: Any, tmp_path: Path, output: str, model_kind: str, match: str
) -> None:
    x, y = training_rows(stack)
    model = LinearRegression() if model_kind == "linear" else MODELS[model_kind]()
    path = save_model(model.fit(x, y), tmp_path / "m.pkl")
    value: Any = str(tmp_path / "out" / "u.tif")
    if output == "quantiles":
        value = {"path": value, "levels": [0.5]}
    cfg = make_config(stack.folder, path, tmp_path / "out" / "p.tif", output={output: value})
    with pytest.raises(ModelError, match=f"output.{output}.*{match}"):
        run(cfg)
    assert not (tmp_path / "out").exists()


def test_a_classifier_has_no_spread(tmp_path: Path) -> None:
    case = build_case(tmp_path, kind="forest")
    case.config["output"]["spread"] = str(tmp_path / "spread.tif")
    with pytest.raises(ModelError, match="output.spread': spread is for regressions"):
        run(case.config)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
@pytest.mark.parametrize("engine", ["serial", "threads", "processes"])
def test_entropy_and_margin_are_their_formulas(tmp_path: Path, dtype: str, engine: str) -> None:
    case = build_case(
        tmp_path, kind="forest", labels=("forest", "water", "urban", "bare"), height=90, width=100
    )
    out = case.output.parent
    case.config["output"].update(
        entropy=str(out / "entropy.tif"),
        margin=str(out / "margin.tif"),
        confidence=str(out / "conf.tif"),
        probabilities_dtype=dtype,
    )
    case.config["processing"] = {
        "memory_mb": 1,
        "workers": 1 if engine == "serial" else 2,
        **({"engine": engine} if engine != "serial" else {}),
    }
    run(case.config)
    nb = notebook(case.folder, case.model, nodata_values=case.config["nodata"]["values"])
    legend = list(case.model.classes_)
    p = legend_probabilities(case.model, nb.rows, legend)
    assert (entropy_formula(p) > 0.3).any() and (margin_formula(p) < 0.5).any()  # not trivial
    for name, values in (
        ("entropy", entropy_formula(p)),
        ("margin", margin_formula(p)),
        ("conf", p.max(axis=1)),
    ):
        np.testing.assert_array_equal(bands(out / f"{name}.tif")[0], encoded(nb, values, dtype))
    with rasterio.open(out / "entropy.tif") as ds:
        assert ds.descriptions == ("entropy",) and ds.dtypes[0] == dtype


def test_one_class_entropy_is_zero_and_margin_one(tmp_path: Path) -> None:
    case = build_case(tmp_path, labels=("forest",))
    model = DecisionTreeClassifier().fit(np.zeros((4, 3)), ["forest"] * 4)
    model.feature_names_in_ = np.array(["elev", "slope", "ndvi"], dtype=object)
    save_model(model, case.model_path)
    out = case.output.parent
    case.config["output"].update(entropy=str(out / "e.tif"), margin=str(out / "m.tif"))
    run(case.config)
    nb = notebook(case.folder, model, nodata_values=case.config["nodata"]["values"])
    ones = np.ones(int((~nb.masked).sum()))
    np.testing.assert_array_equal(bands(out / "e.tif")[0], encoded(nb, 0 * ones, "uint8"))
    np.testing.assert_array_equal(bands(out / "m.tif")[0], encoded(nb, ones, "uint8"))


def test_resume_and_cog_keep_the_new_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interrupt: Any
) -> None:
    """Interrupted after 3 windows, resumed: every output (and its statistics) is that of an
    uninterrupted run; as COGs with overviews."""
    stack = simple_stack(tmp_path / "cov", height=600, width=560, names=STACK_NAMES)  # 3 x 3 tiles
    stack.write()
    x, y = training_rows(stack)
    model = MODELS["quantile_forest"]().fit(x, y)
    path = save_model(model, tmp_path / "m.pkl")

    def config(folder: Path) -> dict[str, Any]:
        return make_config(
            stack.folder,
            path,
            folder / "p.tif",
            output={
                "spread": str(folder / "s.tif"),
                "cog": True,
                "quantiles": {"path": str(folder / "q.tif"), "levels": LEVELS},
            },
            processing={"memory_mb": 1, "checkpoint_seconds": 0},
        )

    whole = run(config(tmp_path / "whole"), workers=1)
    assert whole["windows"] > 4
    cfg = config(tmp_path / "resumed")
    interrupt(cfg, 3)
    assert not (tmp_path / "resumed" / "s.tif").exists()
    resumed = run(cfg, workers=1, resume=True)
    assert resumed["resumed"] is True
    for name in ("p", "s", "q"):
        a, b = tmp_path / "whole" / f"{name}.tif", tmp_path / "resumed" / f"{name}.tif"
        np.testing.assert_array_equal(bands(a), bands(b))
        with rasterio.open(b) as ds:
            assert ds.overviews(1), f"{name}.tif has no overviews"
    for name in ("prediction", "spread"):  # recounted from the rasters on resume
        assert_statistics(
            resumed["statistics"][name],
            bands(tmp_path / "whole" / ("p.tif" if name == "prediction" else "s.tif"))[0],
        )
    for level, band in zip(LEVELS, bands(tmp_path / "whole" / "q.tif"), strict=True):
        assert_statistics(resumed["statistics"]["quantiles"][f"{level:g}"], band)
