"""A genuine Azure AutoML regression model (#14), built from the runtime's own classes.

What AutoML hands a user for a regression task, with no Azure workspace: a fitted
``DataTransformer`` for "regression", a ``PreFittedSoftVotingRegressor`` of two pipelines
(MaxAbsScaler + AutoML's LightGBMRegressor wrapper, StandardScaler + ElasticNet), both in an
sklearn ``Pipeline``, wrapped as ``RegressionPipeline(pipeline, stddev)`` as AutoML's
``pipeline_run_helper`` does; int64 columns among the features. ``model.task: auto`` must
recognise it and the run equal the notebook's ``predict``, in every local engine.

Skipped unless the Azure AutoML runtime is importable (see automl_stack.require_runtime).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: helpers, reference

from automl_stack import (  # noqa: E402
    HEIGHT,
    NODATA_VALUES,
    TRAIN_ORDER,
    WIDTH,
    allow_py311,
    covariates,
    require_runtime,
    training_frame,
)

require_runtime()

import joblib  # noqa: E402
import rasterio  # noqa: E402
from helpers import make_config  # noqa: E402
from reference import notebook  # noqa: E402
from reference_outputs import assert_statistics, regression  # noqa: E402

import windowed_classify  # noqa: E402
from windowed_classify.commands.check import check  # noqa: E402
from windowed_classify.errors import ModelError  # noqa: E402


def build_automl_regressor(x: pd.DataFrame, y: np.ndarray) -> Any:
    allow_py311()
    from azureml.automl.runtime import data_transformation
    from azureml.automl.runtime.shared.model_wrappers import LightGBMRegressor
    from azureml.training.tabular.models.forecasting_pipeline_wrapper import RegressionPipeline
    from azureml.training.tabular.models.voting_ensemble import PreFittedSoftVotingRegressor
    from sklearn.linear_model import ElasticNet
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MaxAbsScaler, StandardScaler

    transformer = data_transformation._suggest_featurizers_and_create_datatransformer(
        "regression", x, y
    )
    transformer.fit(x, y)
    xt = transformer.transform(x)
    lightgbm = Pipeline(
        [
            ("maxabsscaler", MaxAbsScaler()),
            (
                "lightgbmregressor",
                LightGBMRegressor(
                    random_state=0,
                    n_jobs=1,
                    n_estimators=30,
                    num_leaves=15,
                    min_data_in_leaf=10,
                    verbose=-1,
                ),
            ),
        ]
    ).fit(xt, y)
    linear = Pipeline(
        [
            ("standardscalerwrapper", StandardScaler(with_mean=False)),
            ("elasticnet", ElasticNet(alpha=0.01, max_iter=5000)),
        ]
    ).fit(xt, y)
    ensemble = PreFittedSoftVotingRegressor(
        estimators=[("0", lightgbm), ("1", linear)], weights=np.array([0.6, 0.4])
    )
    pipeline = Pipeline(
        [("datatransformer", transformer), ("prefittedsoftvotingregressor", ensemble)]
    )
    return RegressionPipeline(pipeline, stddev=0.25)


@pytest.fixture(scope="module")
def automl(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("automl_regression")
    stack = covariates(root / "covariates")
    stack.write()
    x, _ = training_frame(stack, n=900, seed=2)
    rng = np.random.default_rng(3)
    y = (
        0.002 * x["Relief_dem"]
        + 2.0 * x["Veg_ndvi"]
        + 0.3 * (x["Geol_class"] == 2)
        + 0.001 * x["Clim_etaaann"]
        + rng.normal(0, 0.1, len(x))
    ).to_numpy()
    model = build_automl_regressor(x, y)
    path = root / "model.pkl"
    joblib.dump(model, path)
    return {"root": root, "folder": stack.folder, "model": model, "path": path, "x": x, "y": y}


def test_the_model_is_an_automl_regression_pipeline(automl: dict[str, Any]) -> None:
    model = joblib.load(automl["path"])
    assert type(model).__name__ == "RegressionPipeline"
    (name0, transformer), (_, ensemble) = model.steps
    assert name0 == "datatransformer" and type(transformer).__name__ == "DataTransformer"
    assert type(ensemble).__name__ == "PreFittedSoftVotingRegressor"
    predicted = model.predict(automl["x"])
    assert predicted.dtype.kind == "f" and np.corrcoef(predicted, automl["y"])[0, 1] > 0.8


@pytest.mark.parametrize("engine", ["serial", "threads", "processes"])
def test_streamed_regression_equals_the_notebook(
    automl: dict[str, Any], tmp_path: Path, engine: str
) -> None:
    processing = {"memory_mb": 8, "workers": 1 if engine == "serial" else 2}
    if engine != "serial":
        processing["engine"] = engine
    out = tmp_path / "out" / "value.tif"
    cfg = make_config(
        automl["folder"],
        automl["path"],
        out,
        nodata={"values": NODATA_VALUES},
        processing=processing,
    )
    report = windowed_classify.run(cfg)
    assert report["task"] == "regression" and report["windows"] > 1
    assert report["features"] == TRAIN_ORDER  # from the DataTransformer
    nb = notebook(
        automl["folder"], automl["model"], nodata_values=NODATA_VALUES, features=TRAIN_ORDER
    )
    with rasterio.open(out) as ds:
        got = ds.read(1)
        assert (ds.height, ds.width, ds.dtypes[0]) == (HEIGHT, WIDTH, "float32")
    np.testing.assert_array_equal(got, regression(nb, automl["model"]))
    assert (got[nb.masked.reshape(nb.shape)] == -9999).all()
    assert_statistics(report["statistics"]["prediction"], got)


def test_check_and_unsupported_outputs(automl: dict[str, Any], tmp_path: Path) -> None:
    cfg = make_config(
        automl["folder"],
        automl["path"],
        tmp_path / "v.tif",
        nodata={"values": NODATA_VALUES},
        output={"spread": str(tmp_path / "s.tif")},
    )
    result = check(cfg)
    assert result.task == "regression (auto: RegressionPipeline is a regressor)"
    assert "not a tree ensemble" in result.outputs[1].status
    with pytest.raises(ModelError, match="output.spread"):
        windowed_classify.run(cfg)
