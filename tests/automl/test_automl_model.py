"""A genuine Azure AutoML model, built here from the runtime's own classes.

Skipped unless the Azure AutoML runtime is importable: build its venv with
``scripts/install-azureml.sh VENV`` and run ``VENV/bin/python -m pytest -q tests/automl``
(``.ci/azureml.sh`` does both, with WINDOWED_CLASSIFY_REQUIRE_AZUREML=1: then a missing
runtime is an error, not a skip).

The session fixture trains what AutoML would hand a user, with no Azure workspace: a fitted
``DataTransformer`` (from ``_suggest_featurizers_and_create_datatransformer``), a
``PreFittedSoftVotingClassifier`` of two pipelines (MaxAbsScaler + LightGBM, StandardScaler
+ LogisticRegression), both in an sklearn ``Pipeline`` wrapped as
``PipelineWithYTransformations(pipeline, "LabelEncoder", label_encoder)``; string labels,
int64 columns among the features; ``model.pkl`` saved with joblib; and the scoring files v1
and v2 written by the runtime's own ``_get_scoring_file`` from ``_get_data_snapshot``, as
AutoML's featurization and fit_pipeline do.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: helpers, reference

from automl_stack import (  # noqa: E402
    LABELS,
    NODATA_VALUES,
    SCORING_DTYPES,
    TRAIN_DTYPES,
    TRAIN_ORDER,
    allow_py311,
    covariates,
    require_runtime,
    training_frame,
)

require_runtime()

import joblib  # noqa: E402
from checks import assert_codes_equal, assert_run_matches  # noqa: E402
from helpers import (  # noqa: E402
    make_config,
    read_output,
    run_cli,
    write_yaml,
)
from reference import Reference, reference_from_config, scoring_file_features  # noqa: E402

import windowed_classify  # noqa: E402
from windowed_classify.config import ModelConfig  # noqa: E402
from windowed_classify.models.schema import parse_scoring_file, resolve_schema  # noqa: E402

# ----------------------------------------------------------------------------- the model


def build_automl_model(x: pd.DataFrame, y: np.ndarray) -> Any:
    allow_py311()
    from azureml.automl.runtime import data_transformation
    from azureml.automl.runtime.shared.model_wrappers import LightGBMClassifier
    from azureml.training.tabular.models.pipeline_with_ytransformations import (
        PipelineWithYTransformations,
    )
    from azureml.training.tabular.models.voting_ensemble import PreFittedSoftVotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import LabelEncoder, MaxAbsScaler, StandardScaler

    label_encoder = LabelEncoder().fit(y)
    y_codes = label_encoder.transform(y)
    transformer = data_transformation._suggest_featurizers_and_create_datatransformer(
        "classification", x, y_codes
    )
    transformer.fit(x, y_codes)
    xt = transformer.transform(x)  # sparse: the one-hot Geol_class
    lightgbm = Pipeline(
        [
            ("maxabsscaler", MaxAbsScaler()),
            (
                "lightgbmclassifier",
                LightGBMClassifier(
                    random_state=0,
                    n_jobs=1,
                    n_estimators=30,
                    num_leaves=15,
                    min_data_in_leaf=10,
                    verbose=-1,
                ),
            ),
        ]
    ).fit(xt, y_codes)
    logistic = Pipeline(
        [
            ("standardscalerwrapper", StandardScaler(with_mean=False)),
            ("logisticregression", LogisticRegression(max_iter=1000)),
        ]
    ).fit(xt, y_codes)
    ensemble = PreFittedSoftVotingClassifier(
        estimators=[("0", lightgbm), ("1", logistic)],
        weights=np.array([0.7, 0.3]),
        classification_labels=np.arange(len(label_encoder.classes_)),
    )
    pipeline = Pipeline(
        [("datatransformer", transformer), ("prefittedsoftvotingclassifier", ensemble)]
    )
    return PipelineWithYTransformations(pipeline, "LabelEncoder", label_encoder)


def write_scoring_files(
    model: Any, x: pd.DataFrame, y: np.ndarray, root: Path
) -> tuple[Path, Path]:
    """As AutoML does: _get_data_snapshot with the DataTransformer's types and column
    purposes, _get_output_snapshot, then _get_scoring_file for a pandas input."""
    from azureml.automl.core.inference import inference
    from azureml.automl.runtime import data_transformation

    transformer = model.steps[0][1]
    input_sample = data_transformation._get_data_snapshot(
        data=x,
        column_names_and_types=transformer._columns_types_mapping,
        column_purposes=transformer.stats_and_column_purposes,
    )
    output_sample = data_transformation._get_output_snapshot(np.asarray(y))
    v1, v2 = inference._get_scoring_file(
        is_pandas_data_frame=True, input_sample_str=input_sample, output_sample_str=output_sample
    )
    paths = root / "scoring_file_v_1_0_0.py", root / "scoring_file_v_2_0_0.py"
    for path, text in zip(paths, (v1, v2), strict=True):
        path.write_text(text, encoding="utf-8")
    return paths


@dataclass
class AutoML:
    root: Path
    folder: Path
    model: Any
    model_path: Path
    scoring_v1: Path
    scoring_v2: Path
    x: pd.DataFrame
    y: np.ndarray

    def config(
        self, output: Path, *, scoring: str | None = None, **sections: dict[str, Any]
    ) -> dict[str, Any]:
        model = dict(sections.pop("model", {}))
        if scoring:
            model["scoring_file"] = str(self.scoring_v1 if scoring == "v1" else self.scoring_v2)
        nodata = {"values": NODATA_VALUES, **sections.pop("nodata", {})}
        return make_config(
            self.folder, self.model_path, output, nodata=nodata, model=model, **sections
        )


@pytest.fixture(scope="session")
def automl(tmp_path_factory: pytest.TempPathFactory) -> AutoML:
    root = tmp_path_factory.mktemp("automl")
    stack = covariates(root / "covariates")
    stack.write()
    x, y = training_frame(stack, n=900, seed=1)
    model = build_automl_model(x, y)
    model_path = root / "model.pkl"
    joblib.dump(model, model_path)
    v1, v2 = write_scoring_files(model, x, y, root)
    return AutoML(root, stack.folder, model, model_path, v1, v2, x, y)


def reference(config: dict[str, Any]) -> Reference:
    """The in-memory notebook. It knows no DataTransformer: without a scoring file it is
    told the training order."""
    config = copy.deepcopy(config)
    if "scoring_file" not in config["model"]:
        config["model"].setdefault("features", TRAIN_ORDER)
    ref = reference_from_config(config)
    codes = set(np.unique(ref.codes[~ref.masked]).tolist())
    assert len(codes) >= 3, f"the model predicts too few classes to test with: {codes}"
    return ref


# ----------------------------------------------------------------------------- the model


def test_the_model_is_automl_structured(automl: AutoML) -> None:
    model = joblib.load(automl.model_path)
    assert type(model).__name__ == "PipelineWithYTransformations"
    assert type(model).__module__ == (
        "azureml.training.tabular.models.pipeline_with_ytransformations"
    )
    (name0, transformer), (_, ensemble) = model.steps
    assert name0 == "datatransformer"
    assert type(transformer).__name__ == "DataTransformer"
    assert type(ensemble).__name__ == "PreFittedSoftVotingClassifier"
    assert type(model.y_transformer).__name__ == "LabelEncoder"
    assert list(model.classes_) == LABELS
    assert getattr(model, "feature_names_in_", None) is None  # the schema is elsewhere

    assert transformer._raw_feature_names == TRAIN_ORDER
    types = {k: str(v) for k, v in transformer._columns_types_mapping.items()}
    assert types == TRAIN_DTYPES

    sample = automl.x.head(200)
    predicted = model.predict(sample)
    assert set(predicted) <= set(LABELS) and all(isinstance(p, str) for p in predicted)
    proba = model.predict_proba(sample)
    assert isinstance(proba, pd.DataFrame) and list(proba.columns) == LABELS
    # a real classifier, not a constant: it learnt the rules it was trained on
    assert (model.predict(automl.x) == automl.y).mean() > 0.75
    # AutoML matches columns by name: a numpy array is refused
    with pytest.raises(Exception, match="not found"):
        model.predict(sample.to_numpy())


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter (this one has the 3.11 fix applied already)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the loading bug is 3.11's")
def test_plain_joblib_load_fails_on_py311(automl: AutoML) -> None:
    """Why the tool patches: without the fix the runtime cannot load its own model."""
    proc = _python(
        """
        import sys, joblib
        try:
            joblib.load(sys.argv[1])
        except NameError as exc:
            print("NameError:", exc)
        else:
            print("loaded")
        """,
        str(automl.model_path),
    )
    assert proc.returncode == 0, proc.stderr
    assert "NameError: name 'Scope' is not defined" in proc.stdout, proc.stdout + proc.stderr


def test_load_model_applies_the_fix_before_unpickling(automl: AutoML) -> None:
    sample = automl.x.head(300)
    sample_path = automl.root / "sample.pkl"
    sample.to_pickle(sample_path)
    proc = _python(
        """
        import json, sys
        from pathlib import Path
        import pandas as pd
        from windowed_classify.models.load import load_model
        model = load_model(Path(sys.argv[1]))
        from azureml.automl.core.onnx_convert.onnx_convert_constants import (
            OnnxConvertConstants,
        )
        print(json.dumps({
            "type": type(model).__name__,
            "constant": list(OnnxConvertConstants.OnnxIncompatiblePythonVersion),
            "predicted": model.predict(pd.read_pickle(sys.argv[2])).tolist(),
        }))
        """,
        str(automl.model_path),
        str(sample_path),
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["type"] == "PipelineWithYTransformations"
    assert tuple(got["constant"]) > sys.version_info[:2]
    assert got["predicted"] == automl.model.predict(sample).tolist()


# ----------------------------------------------------------------------------- the schema


def test_the_datatransformer_gives_the_schema(automl: AutoML) -> None:
    schema = resolve_schema(joblib.load(automl.model_path), ModelConfig(path=automl.model_path))
    assert list(schema.features) == TRAIN_ORDER
    assert "DataTransformer" in schema.source
    assert {k: schema.dtypes[k] for k in TRAIN_ORDER} == TRAIN_DTYPES


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_scoring_files_parse_to_the_training_order(automl: AutoML, version: str) -> None:
    path = automl.scoring_v1 if version == "v1" else automl.scoring_v2
    text = path.read_text()
    # the runtime wrote the documented forms
    if version == "v1":
        assert "\ninput_sample = pd.DataFrame({" in text
    else:
        assert "\ndata_sample = PandasParameterType(pd.DataFrame({" in text
        assert "\ninput_sample = StandardPythonParameterType({'data': data_sample})" in text

    columns, dtypes = parse_scoring_file(path)
    assert columns == TRAIN_ORDER
    assert dtypes == SCORING_DTYPES
    assert scoring_file_features(path) == TRAIN_ORDER  # the reference reads it alike

    # with the model as a second source they agree, and the scoring file is preferred
    schema = resolve_schema(automl.model, ModelConfig(path=automl.model_path, scoring_file=path))
    assert list(schema.features) == TRAIN_ORDER
    assert path.name in schema.source


def test_the_scoring_file_is_never_executed(automl: AutoML, tmp_path: Path) -> None:
    sentinel = tmp_path / "executed"
    path = tmp_path / "scoring_file_v_2_0_0.py"
    path.write_text(
        f"open({str(sentinel)!r}, 'w').close()\n" + automl.scoring_v2.read_text(),
        encoding="utf-8",
    )
    assert parse_scoring_file(path)[0] == TRAIN_ORDER
    assert not sentinel.exists()


# ----------------------------------------------------------------------------- streamed runs

# A small memory budget: windows of one output tile (256 x 256), 9 of them.
RUNS = {
    # id: (scoring file, nodata.threshold, processing)
    "scoring_v1-2_processes": ("v1", 0, {"workers": 2, "engine": "processes", "memory_mb": 8}),
    "scoring_v2-serial-threshold_1": ("v2", 1, {"workers": 1, "memory_mb": 8}),
    "datatransformer-2_threads-threshold_2": (
        None,
        2,
        {"workers": 2, "engine": "threads", "memory_mb": 8},
    ),
}


@pytest.mark.parametrize("run_id", list(RUNS))
def test_streamed_run_equals_the_reference(automl: AutoML, tmp_path: Path, run_id: str) -> None:
    scoring, threshold, processing = RUNS[run_id]
    output = tmp_path / "out" / "prediction.tif"
    config = automl.config(
        output, scoring=scoring, nodata={"threshold": threshold}, processing=processing
    )

    report = windowed_classify.run(config)

    ref = reference(config)
    assert_run_matches(report, ref, output)
    assert report["features"] == TRAIN_ORDER
    assert report["ignored_layers"] == ["Zz_unused"]
    assert report["windows"] > 1, "one window: nothing was streamed"
    source = report["features_source"]
    assert ("scoring_file" in source) if scoring else ("DataTransformer" in source), source
    if threshold:
        assert ref.n_filled > 0, "no nodata value was filled: the threshold tests nothing"


def test_cli_run_equals_the_reference(automl: AutoML, tmp_path: Path) -> None:
    """A fresh process through the CLI, relative paths in the YAML: the real user path."""
    (tmp_path / "model").mkdir()
    for src in (automl.model_path, automl.scoring_v1):
        (tmp_path / "model" / src.name).symlink_to(src)
    config = {
        "rasters": {"folder": str(automl.folder)},
        "nodata": {"values": NODATA_VALUES},
        "model": {"path": "model/model.pkl", "scoring_file": "model/scoring_file_v_1_0_0.py"},
        "output": {"path": "out/prediction.tif"},
        "processing": {"workers": 1},
    }
    cfg = write_yaml(tmp_path / "config.yaml", config)

    proc = run_cli(cfg, "--quiet", cwd=tmp_path.parent)

    assert proc.returncode == 0, proc.stderr
    ref = reference(automl.config(tmp_path / "x.tif", scoring="v1"))
    got, _ = read_output(tmp_path / "out" / "prediction.tif")
    assert_codes_equal(got, ref.codes)
    report = json.loads((tmp_path / "out" / "prediction.report.json").read_text())
    assert report["legend"] == {str(i): label for i, label in enumerate(LABELS)}


# ----------------------------------------------------------------------------- disagreement


def _renamed_scoring_file(automl: AutoML, path: Path) -> list[str]:
    """A v1 scoring file of another model: Relief_dem is Relief_slope there."""
    path.write_text(automl.scoring_v1.read_text().replace('"Relief_dem"', '"Relief_slope"'))
    return [name.replace("Relief_dem", "Relief_slope") for name in TRAIN_ORDER]


@pytest.mark.parametrize(
    "case",
    [
        "config_features_vs_datatransformer",
        "scoring_vs_datatransformer",
        "scoring_vs_config_features",
    ],
)
def test_disagreeing_schemas_are_an_error_showing_both(
    automl: AutoML, tmp_path: Path, case: str
) -> None:
    output = tmp_path / "out" / "prediction.tif"
    reordered = list(reversed(TRAIN_ORDER))
    if case == "config_features_vs_datatransformer":
        config = automl.config(output, model={"features": reordered})
        lists = [TRAIN_ORDER, reordered]
    elif case == "scoring_vs_datatransformer":
        scoring = tmp_path / "scoring_file_v_1_0_0.py"
        other = _renamed_scoring_file(automl, scoring)
        config = automl.config(output, model={"scoring_file": str(scoring)})
        lists = [other, TRAIN_ORDER]
    else:
        config = automl.config(output, scoring="v2", model={"features": reordered})
        lists = [TRAIN_ORDER, reordered]
    cfg = write_yaml(tmp_path / "config.yaml", config)

    proc = run_cli(cfg, cwd=tmp_path)

    err = proc.stderr
    assert proc.returncode == 2, f"exit {proc.returncode}; stderr: {err!r}"
    assert "Traceback" not in err, err
    assert "disagree" in err, err
    for names in lists:
        assert str(names) in err, f"{names} not shown in: {err}"
    assert not output.exists()
