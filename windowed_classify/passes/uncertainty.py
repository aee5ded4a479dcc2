"""Per-pixel uncertainty from a model, on the rows of one window.

Classes, from the class probabilities in legend order (rows x K, float64):
- ``class_entropy``: Shannon entropy divided by log K (0: certain, 1: every class equally
  likely); 0 when the legend has one class. Zero probabilities add nothing (0 log 0 = 0).
- ``class_margin``: top probability minus the second (1 - margin: Burrough's confusion
  index); the top probability itself when K = 1.

Regression:
- ``regression_values``: what ``predict`` gives, checked to be one number per row;
- ``tree_spread``: the standard deviation of the members' predictions of a forest or bagging
  regressor, ``np.std([t.predict(X) for t in model.estimators_], axis=0)`` where X is what
  the ensemble itself gives its members (float32 for a forest, its features for bagging);
- ``forest_quantiles``: a quantile forest's own ``predict(X, quantiles=levels)``.

Each row's result depends on that row alone, so rows are processed in blocks to bound the
memory of the (members x rows) and (rows x levels) arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ModelError
from ..models.task import tree_ensemble

SPREAD_BLOCK_BYTES = 32 * 2**20  # members x rows float64 predictions held at once
QUANTILE_BLOCK_ROWS = 1 << 14  # rows per quantile-forest predict


def class_entropy(proba: np.ndarray) -> np.ndarray:
    """Normalised Shannon entropy of each row of ``proba`` (rows x K), float64."""
    k = proba.shape[1]
    if k <= 1:
        return np.zeros(proba.shape[0], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(proba > 0, proba * np.log(proba), 0.0)
    return -terms.sum(axis=1) / np.log(k) + 0.0  # + 0.0: a certain row is +0, not -0


def class_margin(proba: np.ndarray) -> np.ndarray:
    """Top probability minus the second of each row of ``proba`` (rows x K), float64."""
    k = proba.shape[1]
    if k <= 1:
        return proba[:, 0].astype(np.float64) if k else np.zeros(proba.shape[0])
    top = np.partition(proba, k - 2, axis=1)[:, -2:]
    return top[:, 1] - top[:, 0]


def regression_values(predicted: Any, rows: int) -> np.ndarray:
    """A regressor's ``predict`` output as one number per row (a ModelError otherwise)."""
    to_numpy = getattr(predicted, "to_numpy", None)  # a pandas Series or DataFrame
    values = np.asarray(to_numpy() if callable(to_numpy) else predicted)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1 or values.shape[0] != rows:
        raise ModelError(
            f"the model's predict returned shape {values.shape} for {rows} pixels; a regression "
            "needs one value per pixel (multi-output regressors are not supported)"
        )
    if values.dtype.kind not in "fiub":
        example = values[0] if values.size else None
        raise ModelError(
            f"the model predicted {example!r}, which is not a number: a classifier? set "
            "model.task: classification (or leave it auto)"
        )
    return values


def _member_inputs(ensemble: Any, x: Any) -> Any:
    """What the ensemble gives its members: the forest's own validated float32 array."""
    validate = getattr(ensemble, "_validate_X_predict", None)
    if callable(validate):  # forests: float32, C order, feature names checked
        return validate(x)
    return np.asarray(x)  # bagging: the values as they are (dtype=None in its check)


def tree_spread(model: Any, frame: Any) -> np.ndarray:
    """Standard deviation (ddof 0) of the ensemble members' predictions, per row, float64."""
    found = tree_ensemble(model)
    if found is None:
        raise ModelError(f"the model ({type(model).__name__}) is not a tree ensemble")
    before, ensemble = found
    x = before.transform(frame) if before is not None else frame
    x = _member_inputs(ensemble, x)
    members = list(ensemble.estimators_)
    features = getattr(ensemble, "estimators_features_", None)  # bagging: each member's columns
    rows = x.shape[0]
    step = max(256, SPREAD_BLOCK_BYTES // (8 * max(len(members), 1)))
    out = np.empty(rows, dtype=np.float64)
    for start in range(0, rows, step):
        part = x[start : start + step]
        predictions = np.empty((len(members), part.shape[0]), dtype=np.float64)
        for i, member in enumerate(members):
            given = part if features is None else part[:, features[i]]
            predictions[i] = np.asarray(member.predict(given), dtype=np.float64).reshape(-1)
        out[start : start + step] = np.std(predictions, axis=0)
    return out


def forest_quantiles(model: Any, frame: Any, levels: Sequence[float]) -> np.ndarray:
    """``model.predict(frame, quantiles=levels)`` as rows x levels float64, in row blocks."""
    rows = len(frame)
    out = np.empty((rows, len(levels)), dtype=np.float64)
    for start in range(0, rows, QUANTILE_BLOCK_ROWS):
        part = frame[start : start + QUANTILE_BLOCK_ROWS]
        values = np.asarray(model.predict(part, quantiles=list(levels)), dtype=np.float64)
        out[start : start + QUANTILE_BLOCK_ROWS] = values.reshape(len(part), len(levels))
    return out
