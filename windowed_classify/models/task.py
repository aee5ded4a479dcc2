"""Classification or regression, and which optional outputs a model can give.

``model.task: auto`` decides by the model itself: a scikit-learn regressor (``is_regressor``,
which sees through a ``Pipeline`` to its last step), an Azure AutoML regression pipeline, a
LightGBM or XGBoost regressor, or an ONNX model with only a float output is a regression;
anything else a classification. ``Abilities`` says what the model can give beside its
prediction (class probabilities, the spread of a forest's trees, quantiles); each output
kind (outputs/kinds) says which of them it needs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import ModelConfig
from .onnx_model import OnnxClassifier

# Classes that are regressors whatever scikit-learn's tags say (older wrappers set no tags).
REGRESSOR_CLASSES = frozenset(
    {"RegressionPipeline", "LGBMRegressor", "XGBRegressor", "XGBRFRegressor", "CatBoostRegressor"}
)
QUANTILE_FORESTS = frozenset({"RandomForestQuantileRegressor", "ExtraTreesQuantileRegressor"})
QUANTILE_HINT = (
    "quantile-forest's RandomForestQuantileRegressor or ExtraTreesQuantileRegressor (pip "
    'install "windowed_classify[quantile]")'
)
SPREAD_HINT = (
    "scikit-learn's forest and bagging regressors (RandomForestRegressor, "
    "ExtraTreesRegressor, BaggingRegressor, quantile forests), alone or last in a Pipeline"
)


def _class_names(obj: Any) -> set[str]:
    return {c.__name__ for c in type(obj).__mro__}


def looks_like_regressor(model: Any) -> bool:
    """True for the regressors ``model.task: auto`` recognises (see the module doc)."""
    if isinstance(model, OnnxClassifier):
        return model.is_regressor
    if _class_names(model) & REGRESSOR_CLASSES:
        return True
    if getattr(model, "_estimator_type", None) == "regressor":
        return True
    try:
        from sklearn.base import is_regressor

        with warnings.catch_warnings():  # a foreign object: scikit-learn may warn on its tags
            warnings.simplefilter("ignore")
            return bool(is_regressor(model))
    except Exception:  # noqa: BLE001 - not a scikit-learn estimator: not a regressor we know
        return False


def resolve_task(model: Any, cfg: ModelConfig) -> str:
    """``classification`` or ``regression``: ``model.task``, or decided by the model."""
    if cfg.task != "auto":
        return cfg.task
    if isinstance(model, OnnxClassifier) and cfg.classes is not None:
        return "classification"  # classes named: a probability-only classifier
    return "regression" if looks_like_regressor(model) else "classification"


def split_pipeline(model: Any) -> tuple[Any | None, Any]:
    """(the steps before the last, or None; the last step) of a scikit-learn Pipeline; for
    any other model (None, the model)."""
    try:
        from sklearn.pipeline import Pipeline
    except ImportError:  # pragma: no cover - scikit-learn is a core dependency
        return None, model
    if isinstance(model, Pipeline) and type(model) is Pipeline and len(model.steps) > 1:
        return model[:-1], model[-1]
    return None, model


def tree_ensemble(model: Any) -> tuple[Any | None, Any] | None:
    """(steps before, the forest or bagging regressor) when the spread of its members can be
    computed; else None."""
    try:
        from sklearn.ensemble import BaggingRegressor
        from sklearn.ensemble._forest import ForestRegressor
    except ImportError:  # pragma: no cover - scikit-learn is a core dependency
        return None
    before, last = split_pipeline(model)
    members = hasattr(last, "estimators_") and getattr(last, "n_outputs_", 1) == 1
    if isinstance(last, ForestRegressor | BaggingRegressor) and members:
        return before, last
    return None


def quantile_forest(model: Any) -> tuple[Any | None, Any] | None:
    """(steps before, the quantile forest) of a quantile regression forest; else None."""
    before, last = split_pipeline(model)
    return (before, last) if _class_names(last) & QUANTILE_FORESTS else None


def feature_importances(model: Any, n_features: int) -> np.ndarray | None:
    """The model's ``feature_importances_`` (a Pipeline's last step's, when it has one per
    feature), in the model's feature order; None when it has none."""
    for candidate in (model, split_pipeline(model)[1]):
        values = getattr(candidate, "feature_importances_", None)
        if values is not None:
            values = np.asarray(values, dtype=np.float64).ravel()
            if candidate is model or values.size == n_features:
                return values
    return None


@dataclass(frozen=True)
class Abilities:
    """What a model can give beside its prediction."""

    name: str  # the model's class
    task: str
    predict_proba: bool
    ensemble: str | None  # "RandomForestRegressor, 100 trees": the spread can be computed
    quantiles: bool

    @classmethod
    def of(cls, model: Any, task: str) -> Abilities:
        ensemble = tree_ensemble(model)
        described = None
        if ensemble is not None:
            last = ensemble[1]
            described = f"{type(last).__name__}, {len(last.estimators_)} members"
        return cls(
            name=type(model).__name__,
            task=task,
            predict_proba=callable(getattr(model, "predict_proba", None)),
            ensemble=described,
            quantiles=quantile_forest(model) is not None,
        )


def predicts_by_argmax(model: Any) -> bool:
    """True when ``model.predict`` is by construction ``classes_[argmax(predict_proba)]``.

    Then one predict_proba call gives both the classes and the probabilities, bit for bit
    what predict returns. Only for scikit-learn's forests (single output), whose predict is
    exactly that; any other model gets both calls.
    """
    try:
        from sklearn.ensemble._forest import ForestClassifier
    except ImportError:  # pragma: no cover - scikit-learn is a core dependency
        return False
    return (
        isinstance(model, ForestClassifier)
        and type(model).predict is ForestClassifier.predict
        and type(model).predict_proba is ForestClassifier.predict_proba
        and getattr(model, "n_outputs_", 1) == 1
    )
