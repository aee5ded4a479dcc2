"""Regression (#14): a regressor's values, pixel for pixel the in-memory notebook's predict, in
every engine; the report's statistics are numpy's on the written raster; styles and errors."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import rasterio
from helpers import STACK_NAMES, make_config, save_model, simple_stack, training_rows
from lightgbm import LGBMRegressor
from reference import notebook
from reference_outputs import assert_statistics, regression
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression

import windowed_classify
from windowed_classify.errors import ConfigError, ModelError

HEIGHT, WIDTH = 300, 280
ENGINES = {
    "serial": {"workers": 1},
    "threads": {"workers": 2, "engine": "threads"},
    "processes": {"workers": 2, "engine": "processes"},
    "dask": {"engine": "dask"},
}


class OnnxRegressor:
    """The reference's view of an ONNX regressor: onnxruntime itself, one thread, no tool."""

    def __init__(self, path: Path):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        name = self.session.get_inputs()[0].name
        return self.session.run(None, {name: rows.to_numpy(np.float32)})[0].reshape(-1)


def make_model(kind: str, x: pd.DataFrame, y: np.ndarray, root: Path) -> tuple[Path, Any]:
    """(model file, the object the reference predicts with)."""
    if kind == "forest":
        model = RandomForestRegressor(n_estimators=8, max_depth=6, random_state=0).fit(x, y)
    elif kind == "linear":
        model = LinearRegression().fit(x, y)
    elif kind == "lightgbm":
        model = LGBMRegressor(n_estimators=20, num_leaves=8, verbose=-1, random_state=0)
        model.fit(x, y)
    elif kind == "onnx":
        from skl2onnx import to_onnx

        forest = RandomForestRegressor(n_estimators=6, max_depth=5, random_state=0)
        forest.fit(x.to_numpy(np.float32), y)
        onx = to_onnx(forest, x.to_numpy(np.float32)[:1], target_opset=17)
        meta = onx.metadata_props.add()
        meta.key, meta.value = "features", json.dumps(list(STACK_NAMES))
        path = root / "model.onnx"
        path.write_bytes(onx.SerializeToString())
        return path, OnnxRegressor(path)
    else:
        raise ValueError(kind)
    return save_model(model, root / "model.pkl"), model


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("regression")
    stack = simple_stack(root / "covariates", height=HEIGHT, width=WIDTH, names=STACK_NAMES)
    stack.write()
    return stack


def run(config: dict[str, Any]) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return windowed_classify.run(config, quiet=True, recompute_stats=True)


def read(path: Path) -> tuple[np.ndarray, Any]:
    with rasterio.open(path) as ds:
        return ds.read(1), ds.profile


@pytest.mark.parametrize("engine", list(ENGINES))
@pytest.mark.parametrize("kind", ["forest", "linear", "lightgbm", "onnx"])
def test_regression_equals_the_notebook(
    stack: Any, tmp_path: Path, kind: str, engine: str, request: pytest.FixtureRequest
) -> None:
    x, y = training_rows(stack)
    model_path, model = make_model(kind, x, y, tmp_path)
    processing = {"memory_mb": 1, **ENGINES[engine]}
    if engine == "dask":
        processing["scheduler"] = request.getfixturevalue("cluster").scheduler.address
    out = tmp_path / "out" / "soc.tif"
    cfg = make_config(stack.folder, model_path, out, processing=processing)
    report = run(cfg)

    nb = notebook(stack.folder, model, features=STACK_NAMES)
    expected = regression(nb, model)
    got, profile = read(out)
    assert profile["dtype"] == "float32" and profile["nodata"] == -9999
    np.testing.assert_array_equal(got, expected)
    assert (got[nb.masked.reshape(nb.shape)] == -9999).all()
    assert report["task"] == "regression" and report["windows"] > 1
    assert "legend" not in report and "pixel_counts" not in report
    assert report["masked_pixels"] == int(nb.masked.sum())
    assert_statistics(report["statistics"]["prediction"], got)
    assert report["outputs"]["prediction"] == str(out)


def test_float64_and_nan_nodata(stack: Any, tmp_path: Path) -> None:
    x, y = training_rows(stack)
    model_path, model = make_model("forest", x, y, tmp_path)
    out = tmp_path / "soc.tif"
    cfg = make_config(
        stack.folder,
        model_path,
        out,
        output={"dtype": "float64", "nodata": "nan"},
        processing={"memory_mb": 1, "workers": 1},
    )
    report = run(cfg)
    got, profile = read(out)
    assert profile["dtype"] == "float64" and np.isnan(profile["nodata"])
    nb = notebook(stack.folder, model, features=STACK_NAMES)
    np.testing.assert_array_equal(got, regression(nb, model, "float64", np.nan))
    assert report["output_nodata"] == "nan"
    assert_statistics(report["statistics"]["prediction"], got, np.nan)


def test_styles_preview_and_gdal_statistics(stack: Any, tmp_path: Path) -> None:
    x, y = training_rows(stack)
    model_path, _ = make_model("forest", x, y, tmp_path)
    out = tmp_path / "soc.tif"
    cfg = make_config(
        stack.folder,
        model_path,
        out,
        output={"cog": True, "preview": str(tmp_path / "soc.png")},
        processing={"memory_mb": 1, "workers": 1},
    )
    report = run(cfg)
    stats = report["statistics"]["prediction"]
    qml = (tmp_path / "soc.qml").read_text()
    assert 'type="singlebandpseudocolor"' in qml
    assert f'minimumValue="{stats["percentile_2"]!r}"' in qml
    assert f'maximumValue="{stats["percentile_98"]!r}"' in qml
    assert "#440154" in qml and "#fde725" in qml  # viridis, both ends
    assert not (tmp_path / "soc.legend.csv").exists()
    with rasterio.open(out) as ds:  # GDAL reads the aux.xml: what gdalinfo -stats shows
        tags = ds.tags(1)
        assert ds.dtypes[0] == "float32" and ds.overviews(1)  # a COG with overviews
    assert float(tags["STATISTICS_MINIMUM"]) == stats["min"]
    assert float(tags["STATISTICS_MAXIMUM"]) == stats["max"]
    assert float(tags["STATISTICS_MEAN"]) == stats["mean"]
    assert float(tags["STATISTICS_STDDEV"]) == stats["std"]
    assert (tmp_path / "soc.png").stat().st_size > 1000
    assert report["outputs"]["preview"] == str(tmp_path / "soc.png")


def test_statistics_cache_and_task_override(stack: Any, tmp_path: Path) -> None:
    """A second run reuses pass 1's statistics; model.task: classification on a regressor
    asks for classes it does not have."""
    x, y = training_rows(stack)
    model_path, _ = make_model("linear", x, y, tmp_path)
    cfg = make_config(stack.folder, model_path, tmp_path / "a.tif", processing={"workers": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        windowed_classify.run(cfg)
        cfg["output"]["path"] = str(tmp_path / "b.tif")
        assert windowed_classify.run(cfg)["stats_cache"] == "used"
    cfg["model"]["task"] = "classification"
    cfg["output"]["path"] = str(tmp_path / "c.tif")
    with pytest.raises(ModelError, match="classes"):
        run(cfg)


@pytest.mark.parametrize("key", ["probabilities", "confidence", "entropy", "margin"])
def test_a_regressor_gives_no_class_probabilities(stack: Any, tmp_path: Path, key: str) -> None:
    x, y = training_rows(stack)
    model_path, _ = make_model("forest", x, y, tmp_path)
    out = tmp_path / "out" / "soc.tif"
    cfg = make_config(stack.folder, model_path, out, output={key: str(tmp_path / "out/p.tif")})
    with pytest.raises(ModelError, match=f"output.{key}.*regression"):
        run(cfg)
    assert not (tmp_path / "out").exists()  # nothing made, not even the folder


def test_bad_dtype_and_nodata_for_a_regression(stack: Any, tmp_path: Path) -> None:
    x, y = training_rows(stack)
    model_path, _ = make_model("forest", x, y, tmp_path)
    cfg = make_config(stack.folder, model_path, tmp_path / "soc.tif", output={"dtype": "uint8"})
    with pytest.raises(ConfigError, match="output.dtype.*float32 or float64"):
        run(cfg)
    cfg["output"] = {"path": str(tmp_path / "soc.tif"), "nodata": -3.4e38}
    with pytest.raises(ConfigError, match="output.nodata.*not exactly a float32"):
        run(cfg)


def test_a_classifier_with_float_dtype_is_an_error(tmp_path: Path, stack: Any) -> None:
    x, y = training_rows(stack)
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y > np.median(y))
    path = save_model(model, tmp_path / "m.pkl")
    cfg = make_config(stack.folder, path, tmp_path / "c.tif", output={"dtype": "float32"})
    with pytest.raises(ConfigError, match="output.dtype.*for a regression"):
        run(cfg)


def test_a_text_predicting_model_told_regression(tmp_path: Path, stack: Any) -> None:
    x, y = training_rows(stack)
    labels = np.where(y > np.median(y), "high", "low")
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(x, labels)
    cfg = make_config(
        stack.folder,
        save_model(model, tmp_path / "m.pkl"),
        tmp_path / "c.tif",
        model={"task": "regression"},
        processing={"workers": 1},
    )
    with pytest.raises(ModelError, match="not a number.*model.task: classification"):
        run(cfg)
    assert not (tmp_path / "c.tif").exists()


def test_report_of_a_regression_is_json_and_complete(stack: Any, tmp_path: Path) -> None:
    x, y = training_rows(stack)
    model_path, _ = make_model("linear", x, y, tmp_path)
    out = tmp_path / "soc.tif"
    report = run(make_config(stack.folder, model_path, out, processing={"workers": 1}))
    on_disk = json.loads(out.with_name("soc.report.json").read_text())
    assert on_disk == json.loads(json.dumps(report))
    hist = report["statistics"]["prediction"]["histogram"]
    assert len(hist["edges"]) == 21 and len(hist["counts"]) == 20
    assert sum(hist["counts"]) == report["statistics"]["prediction"]["count"]
    assert report["output_nodata"] == -9999
    loaded = joblib.load(model_path)
    assert copy.deepcopy(report["features"]) == list(loaded.feature_names_in_)


def test_every_pixel_masked(tmp_path: Path) -> None:
    """No value to describe: statistics hold a count of 0, the preview a default ramp."""
    from helpers import write_raster

    eye = np.eye(40) > 0  # a and b are never valid together
    write_raster(
        tmp_path / "cov" / "a.tif", np.where(eye, 1, -9999).astype(np.float32), nodata=-9999
    )
    write_raster(
        tmp_path / "cov" / "b.tif", np.where(~eye, 1, -9999).astype(np.float32), nodata=-9999
    )
    model = LinearRegression().fit(pd.DataFrame({"a": [1.0, 2, 3], "b": [0.0, 1, 1]}), [1, 2, 3])
    cfg = make_config(
        tmp_path / "cov",
        save_model(model, tmp_path / "m.pkl"),
        tmp_path / "o.tif",
        output={"preview": str(tmp_path / "o.png")},
    )
    report = run(cfg)
    assert report["statistics"] == {"prediction": {"count": 0}}
    assert report["masked_pixels"] == 1600 and (tmp_path / "o.png").exists()
    assert (read(tmp_path / "o.tif")[0] == -9999).all()
