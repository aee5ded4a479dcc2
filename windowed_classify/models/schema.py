"""Which features a model expects, in which order (and with which dtypes when known).

By preference: an Azure AutoML scoring file (parsed with ``ast``, never executed), the model's
own ``feature_names_in_`` or DataTransformer, ``model.features`` in the config.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ModelConfig
from ..errors import ConfigError, ModelError
from .onnx_model import OnnxClassifier


@dataclass(frozen=True)
class Schema:
    features: tuple[str, ...]
    dtypes: dict[str, str]  # feature -> dtype the model was trained with, when known
    source: str
    # trusted: the order is model.features' alone, which nothing can check. array_input: the
    # model knows no feature names, so it gets a plain array (a frame would only earn
    # scikit-learn's feature-name warning).
    trusted: bool = False
    array_input: bool = False


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
    sources: list[tuple[str, list[str], dict[str, str]]] = []
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
        cols, types = parse_scoring_file(cfg.scoring_file)
        sources.append((f"model.scoring_file {cfg.scoring_file.name}", cols, types))
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
    trusted = len(sources) == 1 and cfg.features is not None
    # A model that matches columns by no name of its own gets an array (ONNX: its own tensor)
    array_input = not _model_sources(model) and not isinstance(model, OnnxClassifier)
    return Schema(tuple(features), dtypes, name, trusted, array_input)


def trust_warning(schema: Schema) -> str:
    """What a run and check say when the column order cannot be verified."""
    return (
        "the model carries no feature names: the column order is taken on trust from "
        f"model.features ({', '.join(schema.features)}); a wrong order gives a wrong map "
        "without any error"
    )
