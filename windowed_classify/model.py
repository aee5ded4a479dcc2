"""Load the estimator, work out its schema (features, order, dtypes) and its class legend.

Loading a pickle runs code from it: only load models you trust.
"""

from __future__ import annotations

import ast
import importlib.util
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import ModelConfig
from .errors import ConfigError, ModelError

log = logging.getLogger(__name__)

AZUREML_HINT = (
    "this model needs the Azure AutoML runtime (package azureml-automl-runtime); "
    "pip cannot install it as declared: build a venv with scripts/install-azureml.sh "
    "(README section 'Azure AutoML models')"
)


# ----------------------------------------------------------------------------- loading


def _patch_azureml_for_py311() -> None:
    """AutoML's onnx converter skips its imports on 3.11 but still uses the names.

    Raising its "incompatible Python" constant lets DataTransformer unpickle (AZUREML.md).
    """
    if sys.version_info < (3, 11):
        return
    try:
        from azureml.automl.core.onnx_convert.onnx_convert_constants import (  # type: ignore
            OnnxConvertConstants,
        )
    except Exception:  # azureml missing or laid out differently: nothing to patch
        return
    current = getattr(OnnxConvertConstants, "OnnxIncompatiblePythonVersion", None)
    if isinstance(current, tuple) and current <= sys.version_info[:2]:
        OnnxConvertConstants.OnnxIncompatiblePythonVersion = (
            sys.version_info[0],
            sys.version_info[1] + 1,
        )


def _automl_runtime_installed() -> bool:
    try:
        return importlib.util.find_spec("azureml.automl.runtime") is not None
    except (ImportError, ValueError):
        return False


def load_model(path: Path) -> Any:
    """joblib.load with clear errors; applies the AutoML Python 3.11 fix first."""
    import joblib

    if not path.is_file():
        raise ModelError(f"model.path: model file not found: {path}")
    if path.suffix.lower() == ".onnx":
        from .onnxmodel import load_onnx

        return load_onnx(path)
    _patch_azureml_for_py311()
    try:
        return joblib.load(path)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == "azureml":
            if _automl_runtime_installed():
                raise ModelError(
                    f"cannot load model {path}: it needs the module '{exc.name}', which the "
                    "installed Azure AutoML runtime does not have (was the model saved with "
                    "another release of azureml-automl-runtime?)"
                ) from None
            raise ModelError(f"cannot load model {path}: {AZUREML_HINT}") from None
        raise ModelError(
            f"cannot load model {path}: it needs the Python package '{exc.name}', "
            "which is not installed"
        ) from None
    except Exception as exc:  # a corrupt or foreign file: unpickling can raise anything
        raise ModelError(f"cannot load model {path}: {type(exc).__name__}: {exc}") from None


# ----------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Schema:
    features: tuple[str, ...]
    dtypes: dict[str, str]  # feature -> dtype the model was trained with, when known
    source: str


def parse_scoring_file(path: Path) -> tuple[list[str], dict[str, str]]:
    """Columns and dtypes of ``input_sample`` / ``data_sample`` in an AutoML scoring file.

    The file imports azureml and must never be executed: it is parsed with ``ast``.
    """
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except FileNotFoundError:
        raise ConfigError(f"model.scoring_file not found: {path}") from None
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot parse model.scoring_file {path}: {exc}") from None
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign):
            continue
        names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        if not {"input_sample", "data_sample"} & set(names):
            continue
        frame = _find_dataframe_dict(node.value)
        if frame is not None:
            return _columns_from_dict(frame, path)
    raise ModelError(
        f"model.scoring_file {path} has no 'input_sample = pd.DataFrame({{...}})' "
        "(or 'data_sample') to read the features from"
    )


def _find_dataframe_dict(node: ast.AST) -> ast.Dict | None:
    """The dict literal passed to a ``*.DataFrame(...)`` call anywhere inside ``node``."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "DataFrame":
                args = list(sub.args) + [k.value for k in sub.keywords if k.arg == "data"]
                for arg in args:
                    if isinstance(arg, ast.Dict):
                        return arg
    return None


def _columns_from_dict(frame: ast.Dict, path: Path) -> tuple[list[str], dict[str, str]]:
    columns, dtypes = [], {}
    for key, value in zip(frame.keys, frame.values, strict=True):
        if not isinstance(key, ast.Constant) or not isinstance(key.value, str):
            raise ModelError(f"model.scoring_file {path}: a column name is not a plain string")
        columns.append(key.value)
        dtype = _series_dtype(value)
        if dtype:
            dtypes[key.value] = dtype
    return columns, dtypes


def _series_dtype(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        for kw in node.keywords:
            if kw.arg == "dtype" and isinstance(kw.value, ast.Constant):
                return str(kw.value.value)
    return None


def _model_sources(model: Any) -> list[tuple[str, list[str], dict[str, str]]]:
    """Feature lists the model itself carries."""
    sources = []
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        sources.append(("the model's feature_names_in_", [str(n) for n in names], {}))
    steps = getattr(model, "steps", None)
    if steps:
        transformer = steps[0][1]
        raw = getattr(transformer, "_raw_feature_names", None)
        if raw is not None:
            types = getattr(transformer, "_columns_types_mapping", None) or {}
            dtypes = {str(k): str(v) for k, v in dict(types).items()}
            sources.append(("the model's DataTransformer", [str(n) for n in raw], dtypes))
    return sources


def resolve_schema(model: Any, cfg: ModelConfig) -> Schema:
    """Features in the model's order, by preference: scoring file, model, config.

    When two sources are available and disagree, that is an error showing both.
    """
    sources: list[tuple[str, list[str], dict[str, str]]] = []
    if cfg.scoring_file is not None:
        cols, dtypes = parse_scoring_file(cfg.scoring_file)
        sources.append((f"model.scoring_file {cfg.scoring_file.name}", cols, dtypes))
    sources += _model_sources(model)
    if cfg.features is not None:
        sources.append(("model.features in the config", list(cfg.features), {}))
    if not sources:
        raise ModelError(
            "cannot tell which features the model expects: give model.scoring_file "
            "(Azure AutoML scoring_file_v_1_0_0.py) or model.features in the config "
            "(the model has no feature_names_in_)"
        )
    name, features, _ = sources[0]
    for other, other_features, _ in sources[1:]:
        if other_features != features:
            raise ModelError(
                f"{name} and {other} disagree on the features:\n"
                f"  {name}: {features}\n  {other}: {other_features}"
            )
    if len(set(features)) != len(features):
        raise ModelError(f"{name} lists a feature twice: {features}")
    dtypes: dict[str, str] = {}
    for _, _, d in reversed(sources):
        dtypes.update(d)
    return Schema(tuple(features), dtypes, name)


# ----------------------------------------------------------------------------- classes


@dataclass(frozen=True)
class Legend:
    """Class labels in code order: code i <-> labels[i]."""

    labels: tuple[Any, ...]
    source: str

    def as_dict(self) -> dict[str, str]:
        return {str(i): str(label) for i, label in enumerate(self.labels)}


def resolve_legend(model: Any, cfg: ModelConfig) -> Legend:
    if cfg.classes is not None:
        return Legend(tuple(cfg.classes), "model.classes")
    classes = getattr(model, "classes_", None)
    if classes is None:
        raise ModelError(
            "the model has no classes_: list the labels in model.classes in the config "
            "(their order gives the output codes 0, 1, 2, ...)"
        )
    return Legend(tuple(_plain(c) for c in np.asarray(classes).tolist()), "the model's classes_")


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def check_codes_fit(legend: Legend, dtype: str, nodata: int) -> None:
    """Every code 0..n-1 must fit the dtype and differ from the nodata code."""
    n = len(legend.labels)
    top = int(np.iinfo(dtype).max)
    if n - 1 > top:
        raise ConfigError(
            f"{n} classes ({legend.source}) do not fit output.dtype {dtype} (codes 0..{top})"
        )
    if 0 <= nodata < n:
        raise ConfigError(
            f"output.nodata {nodata} collides with the code of class "
            f"{legend.labels[nodata]!r}: {n} classes use codes 0..{n - 1}; "
            "choose an output.nodata outside that range"
        )


class CodeMapper:
    """Vectorised label -> code mapping; an unknown label is a ModelError.

    A binary search over the sorted legend (about 10x faster than ``np.unique`` on text
    labels); labels of another type than the legend's fall back to a dictionary lookup.
    """

    def __init__(self, legend: Legend):
        self.legend = legend
        self.lookup = {label: code for code, label in enumerate(legend.labels)}
        labels = np.asarray(legend.labels)
        self.order = np.argsort(labels, kind="stable")
        self.sorted = labels[self.order]

    def __call__(self, predicted: Sequence[Any] | np.ndarray) -> np.ndarray:
        pred = np.asarray(predicted).reshape(-1)
        if pred.dtype.kind == "O" and self.sorted.dtype.kind == "U":
            # sklearn returns text labels as objects: search them as fixed-width text, then
            # check one pixel of each code really held text (an int 1 must not match "1").
            try:
                codes = self._search(pred.astype(str))
            except ModelError:  # report the label as the model gave it
                return self._by_dict(pred)
            if codes is not None and all(
                isinstance(pred[int(np.argmax(codes == c))], str) for c in np.unique(codes)
            ):
                return codes
            return self._by_dict(pred)
        if pred.dtype.kind == self.sorted.dtype.kind or (
            pred.dtype.kind in "iuf" and self.sorted.dtype.kind in "iuf"
        ):
            codes = self._search(pred)
            return codes if codes is not None else self._by_dict(pred)
        return self._by_dict(pred)

    def _search(self, pred: np.ndarray) -> np.ndarray | None:
        """Codes by binary search; an unknown label raises; None when types do not compare."""
        try:
            pos = np.searchsorted(self.sorted, pred).clip(0, len(self.sorted) - 1)
            hit = self.sorted[pos] == pred
        except TypeError:
            return None
        if not hit.all():
            self._unknown(pred[~hit][0])
        return self.order[pos]

    def _by_dict(self, pred: np.ndarray) -> np.ndarray:
        uniques, inverse = np.unique(pred.astype(object), return_inverse=True)
        codes = np.empty(uniques.size, dtype=np.int64)
        for i, label in enumerate(uniques.tolist()):
            code = self.lookup.get(label)
            if code is None:
                self._unknown(label)
            codes[i] = code
        return codes[inverse.reshape(-1)]

    def _unknown(self, label: Any) -> None:
        raise ModelError(
            f"the model predicted the label {_plain(label)!r}, which is not in "
            f"{self.legend.source} {list(self.legend.labels)!r}"
        )


def class_probabilities(model: Any, frame: Any, legend: Legend) -> np.ndarray:
    """``predict_proba`` as a float64 (rows, classes) array in the legend's code order.

    scikit-learn and ONNX return an ndarray ordered like ``model.classes_``; Azure AutoML
    returns a DataFrame whose columns are the labels. A legend label the model does not know
    gets probability 0; a model class missing from the legend is an error (its probability
    would be lost).
    """
    if not callable(getattr(model, "predict_proba", None)):
        raise ModelError("the model has no predict_proba: it cannot give class probabilities")
    return order_probabilities(model, model.predict_proba(frame), legend)


def order_probabilities(model: Any, proba: Any, legend: Legend) -> np.ndarray:
    """A ``predict_proba`` result as float64 (rows, classes) in the legend's code order."""
    columns = getattr(proba, "columns", None)
    if columns is not None:  # a DataFrame: the columns are the labels
        labels = [_plain(c) for c in columns]
        values = np.asarray(proba.to_numpy(), dtype=np.float64)
    else:
        values = np.asarray(proba, dtype=np.float64)
        classes = getattr(model, "classes_", None)
        if classes is None:
            raise ModelError("the model's predict_proba gives no labels and it has no classes_")
        labels = [_plain(c) for c in np.asarray(classes).tolist()]
    if values.ndim != 2 or values.shape[1] != len(labels):
        raise ModelError(
            f"predict_proba returned shape {values.shape} for {len(labels)} classes {labels!r}"
        )
    code_of = {label: code for code, label in enumerate(legend.labels)}
    out = np.zeros((values.shape[0], len(legend.labels)), dtype=np.float64)
    for j, label in enumerate(labels):
        code = code_of.get(label)
        if code is None:
            raise ModelError(
                f"the model's class {label!r} is not in {legend.source} "
                f"{list(legend.labels)!r}: its probability would have no band"
            )
        out[:, code] = values[:, j]
    return out
