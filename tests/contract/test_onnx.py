"""ONNX models (extra ``onnx``): a scikit-learn RandomForest converted with skl2onnx must give
the scikit-learn codes, alone and through a full run. Skipped without onnxruntime/skl2onnx.

ONNX tree ensembles compare in float32 and sum leaf values in float32, so a rare pixel on a
threshold or a probability tie may flip: agreement is asserted >= 99.9% and printed.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")

from helpers import build_case, read_output, save_model, valid_pool  # noqa: E402
from skl2onnx import convert_sklearn  # noqa: E402
from skl2onnx.common.data_types import (  # noqa: E402
    DoubleTensorType,
    FloatTensorType,
    Int64TensorType,
)
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402

import windowed_classify  # noqa: E402
import windowed_classify.models.load  # noqa: E402
from windowed_classify.config import ModelConfig  # noqa: E402
from windowed_classify.errors import ModelError  # noqa: E402
from windowed_classify.models.legend import resolve_legend  # noqa: E402
from windowed_classify.models.onnx_model import OnnxClassifier, load_onnx  # noqa: E402
from windowed_classify.models.schema import resolve_schema  # noqa: E402

FEATURES = ("elev", "slope", "ndvi")
LABELS = ("forest", "urban", "water")  # sklearn's classes_ order (sorted)
MIN_AGREEMENT = 0.999


# ----------------------------------------------------------------------------- builders


def labelled(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """String labels that depend on the features, with some noise (so trees are not trivial)."""
    rng = np.random.default_rng(seed)
    score = frame.to_numpy(np.float64) @ np.array([1.0, 0.5, -0.3]) + rng.normal(0, 25, len(frame))
    return np.asarray(LABELS, dtype=object)[(score // 40).astype(np.int64) % 3].astype(str)


def make_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {f: np.round(rng.normal(100 * (i + 1), 30, n), 1) for i, f in enumerate(FEATURES)}
    return pd.DataFrame(data, columns=list(FEATURES)).astype(np.float32)


def train_forest(frame: pd.DataFrame, y: np.ndarray) -> RandomForestClassifier:
    model = RandomForestClassifier(n_estimators=25, max_depth=8, random_state=0)
    return model.fit(frame, y)


def to_onnx_file(
    model: RandomForestClassifier,
    path: Path,
    *,
    per_feature: bool = False,
    tensor_type: Any = FloatTensorType,
    zipmap: bool = True,
    metadata: dict[str, str] | None = None,
    drop_label: bool = False,
) -> Path:
    """Convert with skl2onnx: one tensor input ``X``, or one named input per feature."""
    features = [str(f) for f in model.feature_names_in_]
    options = {} if zipmap else {"zipmap": False}
    if per_feature:
        # skl2onnx concatenates several inputs for a ColumnTransformer, not for a bare forest
        columns = ColumnTransformer([("keep", "passthrough", features)])
        columns.fit(pd.DataFrame(np.zeros((1, len(features))), columns=features))
        target: Any = Pipeline([("columns", columns), ("forest", model)])
        initial_types = [(f, tensor_type([None, 1])) for f in features]
    else:
        target = model
        initial_types = [("X", tensor_type([None, len(features)]))]
    opts = {id(model): options} if options else None
    proto = convert_sklearn(target, initial_types=initial_types, options=opts)
    if drop_label:  # a model that only gives probabilities
        keep = [o for o in proto.graph.output if "label" not in o.name]
        del proto.graph.output[:]
        proto.graph.output.extend(keep)
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    path.write_bytes(proto.SerializeToString())
    return path


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.asarray(a) == np.asarray(b)))


@pytest.fixture(scope="module")
def forest() -> RandomForestClassifier:
    frame = make_frame(600, seed=1)
    return train_forest(frame, labelled(frame, seed=2))


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return make_frame(50_000, seed=3)


def check_against_sklearn(
    onnx: OnnxClassifier, forest: RandomForestClassifier, frame: pd.DataFrame, what: str
) -> None:
    expected = forest.predict(frame)
    got = onnx.predict(frame)
    assert got.shape == expected.shape
    share = agreement(got, expected)
    print(f"\n[onnx {what}] label agreement with scikit-learn: {share:.6f} on {len(frame)} rows")
    assert share >= MIN_AGREEMENT

    proba = onnx.predict_proba(frame)
    assert proba.shape == (len(frame), len(LABELS))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(proba, forest.predict_proba(frame), atol=1e-5)
    # argmax of the probabilities gives the label wherever the top probability is unique
    top2 = np.sort(proba, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-5
    argmax_labels = onnx.classes_[np.argmax(proba, axis=1)]
    assert (argmax_labels[clear] == got[clear]).all()
    assert agreement(argmax_labels, got) >= MIN_AGREEMENT


# ----------------------------------------------------------------------------- the classifier


def test_single_tensor_input_with_feature_metadata(
    tmp_path: Path, forest: RandomForestClassifier, sample: pd.DataFrame
) -> None:
    path = to_onnx_file(
        forest, tmp_path / "model.onnx", metadata={"features": json.dumps(FEATURES)}
    )
    onnx = load_onnx(path)
    assert onnx.classes_.tolist() == list(forest.classes_) == list(LABELS)
    assert onnx.feature_names_in_.tolist() == list(FEATURES)
    check_against_sklearn(onnx, forest, sample, "single tensor input")

    cfg = ModelConfig(path=path)
    assert resolve_schema(onnx, cfg).features == FEATURES
    assert resolve_legend(onnx, cfg).labels == LABELS


def test_one_named_input_per_feature(
    tmp_path: Path, forest: RandomForestClassifier, sample: pd.DataFrame
) -> None:
    onnx = load_onnx(to_onnx_file(forest, tmp_path / "model.onnx", per_feature=True))
    assert [inp.name for inp in onnx.inputs] == list(FEATURES)
    assert onnx.feature_names_in_.tolist() == list(FEATURES)  # graph order
    assert onnx.classes_.tolist() == list(LABELS)
    check_against_sklearn(onnx, forest, sample, "one input per feature")
    # inputs are fed by name: the frame's column order does not matter
    shuffled = sample[["ndvi", "elev", "slope"]]
    assert (onnx.predict(shuffled) == onnx.predict(sample)).all()


def test_comma_separated_feature_metadata(tmp_path: Path, forest: RandomForestClassifier) -> None:
    path = to_onnx_file(forest, tmp_path / "m.onnx", metadata={"features": "elev, slope,ndvi"})
    assert load_onnx(path).feature_names_in_.tolist() == list(FEATURES)


def test_single_tensor_without_feature_names_needs_config_features(
    tmp_path: Path, forest: RandomForestClassifier, sample: pd.DataFrame
) -> None:
    path = to_onnx_file(forest, tmp_path / "model.onnx")
    onnx = load_onnx(path)
    assert not hasattr(onnx, "feature_names_in_")
    with pytest.raises(ModelError, match="model.features"):
        resolve_schema(onnx, ModelConfig(path=path))
    assert resolve_schema(onnx, ModelConfig(path=path, features=FEATURES)).features == FEATURES
    assert agreement(onnx.predict(sample[:2000]), forest.predict(sample[:2000])) >= MIN_AGREEMENT
    with pytest.raises(ModelError, match="takes 3 features, given 2"):
        onnx.predict(sample[["elev", "slope"]])


def test_feature_metadata_must_fit_the_input(tmp_path: Path, forest: RandomForestClassifier):
    path = to_onnx_file(forest, tmp_path / "m.onnx", metadata={"features": '["elev", "slope"]'})
    with pytest.raises(ModelError, match="lists 2 features but its input 'X' takes 3"):
        load_onnx(path)


@pytest.mark.parametrize("classes", [json.dumps(LABELS), "forest,urban,water", None])
def test_plain_probability_tensor(
    tmp_path: Path,
    forest: RandomForestClassifier,
    sample: pd.DataFrame,
    classes: str | None,
) -> None:
    """zipmap=False: a (rows, classes) tensor; labels from the metadata or the config."""
    metadata = {"features": json.dumps(FEATURES)}
    if classes is not None:
        metadata["classes"] = classes
    path = to_onnx_file(forest, tmp_path / "model.onnx", zipmap=False, metadata=metadata)
    onnx = load_onnx(path)
    assert not onnx.zipmap
    frame = sample[:5000]
    proba = onnx.predict_proba(frame)
    assert proba.shape == (len(frame), 3)
    np.testing.assert_allclose(proba, forest.predict_proba(frame), atol=1e-5)
    assert agreement(onnx.predict(frame), forest.predict(frame)) >= MIN_AGREEMENT
    if classes is None:
        assert onnx.classes_ is None
        with pytest.raises(ModelError, match="model.classes"):
            resolve_legend(onnx, ModelConfig(path=path))
        legend = resolve_legend(onnx, ModelConfig(path=path, classes=LABELS))
        assert legend.labels == LABELS
    else:
        assert onnx.classes_.tolist() == list(LABELS)


@pytest.mark.parametrize("zipmap", [True, False])
def test_labels_from_probabilities_without_a_label_output(
    tmp_path: Path, forest: RandomForestClassifier, sample: pd.DataFrame, zipmap: bool
) -> None:
    metadata = {"features": json.dumps(FEATURES), "classes": json.dumps(LABELS)}
    path = to_onnx_file(
        forest, tmp_path / "m.onnx", zipmap=zipmap, metadata=metadata, drop_label=True
    )
    onnx = load_onnx(path)
    assert onnx.label_output is None
    frame = sample[:5000]
    assert agreement(onnx.predict(frame), forest.predict(frame)) >= MIN_AGREEMENT


def test_class_metadata_must_agree_with_zipmap(tmp_path: Path, forest: RandomForestClassifier):
    path = to_onnx_file(forest, tmp_path / "m.onnx", metadata={"classes": "water,urban,forest"})
    with pytest.raises(ModelError, match="differ from the labels of its probability output"):
        load_onnx(path)


@pytest.mark.parametrize("per_feature", [False, True])
def test_double_inputs_are_cast(
    tmp_path: Path, forest: RandomForestClassifier, sample: pd.DataFrame, per_feature: bool
) -> None:
    path = to_onnx_file(
        forest, tmp_path / "model.onnx", per_feature=per_feature, tensor_type=DoubleTensorType
    )
    onnx = load_onnx(path)
    assert {inp.dtype for inp in onnx.inputs} == {"tensor(double)"}
    frame = sample[:5000]
    assert agreement(onnx.predict(frame), forest.predict(frame)) >= MIN_AGREEMENT


def test_int64_inputs_take_whole_values(tmp_path: Path) -> None:
    frame = make_frame(400, seed=5).round(0)
    model = train_forest(frame, labelled(frame, seed=6))
    onnx = load_onnx(to_onnx_file(model, tmp_path / "m.onnx", tensor_type=Int64TensorType))
    assert onnx.inputs[0].dtype == "tensor(int64)"
    test = make_frame(3000, seed=7).round(0)
    assert agreement(onnx.predict(test), model.predict(test)) >= MIN_AGREEMENT
    test.iloc[5, 1] = 2.5
    with pytest.raises(ModelError, match="not a whole number: 2.5"):
        onnx.predict(test)


def test_session_is_single_threaded_lazy_and_not_pickled(
    tmp_path: Path, forest: RandomForestClassifier, sample: pd.DataFrame
) -> None:
    path = to_onnx_file(forest, tmp_path / "model.onnx", metadata={"features": "elev,slope,ndvi"})
    onnx = load_onnx(path)
    options = onnx._get_session().get_session_options()
    assert options.intra_op_num_threads == 1

    blob = pickle.dumps(onnx)
    assert len(blob) < path.stat().st_size  # the path travels, not the model
    copy = pickle.loads(blob)
    assert copy._session is None  # opened on first use
    assert copy.path == path
    assert copy.classes_.tolist() == list(LABELS)
    assert copy.feature_names_in_.tolist() == list(FEATURES)
    frame = sample[:1000]
    assert (copy.predict(frame) == onnx.predict(frame)).all()
    assert copy._session is not None


def test_bad_file_is_a_model_error_naming_it(tmp_path: Path) -> None:
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"this is not an onnx model")
    with pytest.raises(ModelError, match="cannot load ONNX model .*broken.onnx") as info:
        load_onnx(bad)
    assert "\n" not in str(info.value)
    with pytest.raises(ModelError, match="model file not found: .*missing.onnx"):
        load_onnx(tmp_path / "missing.onnx")


def test_missing_onnxruntime_says_to_install_the_extra(
    tmp_path: Path, forest: RandomForestClassifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = to_onnx_file(forest, tmp_path / "model.onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import raises ImportError
    with pytest.raises(ModelError, match=r'pip install "windowed_classify\[onnx\]"'):
        load_onnx(path)


# ----------------------------------------------------------------------------- full runs


def run_codes(config: dict[str, Any], model_path: Path, output: Path, **processing: Any):
    cfg = {
        **config,
        "model": {**config["model"], "path": str(model_path)},
        "output": {**config["output"], "path": str(output)},
        "processing": processing,
    }
    report = windowed_classify.run(cfg)
    codes, _ = read_output(output)
    return codes, report


@pytest.mark.parametrize(("engine", "workers"), [("serial", 1), ("threads", 2), ("processes", 2)])
@pytest.mark.parametrize("per_feature", [False, True])
def test_full_run_matches_the_pickled_model(
    tmp_path: Path,
    engine: str,
    workers: int,
    per_feature: bool,
) -> None:
    case = build_case(tmp_path, names=FEATURES, height=130, width=150, kind="forest")
    pools = {
        s.name: valid_pool(s, case.config["nodata"]["values"], True) for s in case.stack.layers
    }
    rng = np.random.default_rng(11)
    frame = pd.DataFrame({f: rng.choice(pools[f], 1500) for f in FEATURES}).astype(np.float32)
    forest = train_forest(frame, labelled(frame, seed=12))
    save_model(forest, case.model_path)
    metadata: dict[str, str] = {} if per_feature else {"features": json.dumps(FEATURES)}
    onnx_path = to_onnx_file(
        forest, tmp_path / "model.onnx", per_feature=per_feature, metadata=metadata
    )

    processing: dict[str, Any] = {"workers": workers}
    if engine != "serial":
        processing["engine"] = engine
    out = tmp_path / "out"
    expected, report_pkl = run_codes(case.config, case.model_path, out / "pkl.tif", **processing)
    got, report_onnx = run_codes(case.config, onnx_path, out / "onnx.tif", **processing)

    assert report_onnx["legend"] == report_pkl["legend"]
    nodata = 255
    assert ((got == nodata) == (expected == nodata)).all()  # the same pixels are masked
    share = agreement(got, expected)
    layout = "one input per feature" if per_feature else "single tensor input"
    print(
        f"\n[onnx full run, {layout}, {engine}] pixel agreement with the pickle: "
        f"{share:.6f} ({int((got != expected).sum())} of {got.size} differ)"
    )
    assert share >= MIN_AGREEMENT
    assert (expected != nodata).sum() > got.size // 2  # most pixels were classified
