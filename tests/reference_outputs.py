"""In-memory references for #14's outputs, computed the obvious way over the whole stack:
the notebook's filled rows (reference.notebook) given to the model at once, the formulas of
the issue written out, numpy's own statistics on the whole output. Nothing here imports the
package under test.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from aoa_reference import ReferenceAoa, reference_aoa
from reference import Notebook, quiet_predict

FLOAT_NODATA = -9999.0


def _image(nb: Notebook, values: np.ndarray, fill: float, dtype: str) -> np.ndarray:
    """Unmasked pixels get ``values`` (in row order), masked ones ``fill``: one 2-D band."""
    out = np.full(nb.masked.size, fill, dtype=dtype)
    out[~nb.masked] = values
    return out.reshape(nb.shape)


def regression(
    nb: Notebook, model: Any, dtype: str = "float32", nodata: float = FLOAT_NODATA
) -> np.ndarray:
    """``model.predict`` on the notebook's filled rows, cast to ``dtype``."""
    predicted = np.asarray(quiet_predict(model.predict, nb.rows)).reshape(-1)
    with np.errstate(over="ignore"):
        return _image(nb, predicted.astype(dtype), nodata, dtype)


def spread(nb: Notebook, model: Any) -> np.ndarray:
    """The issue's formula: ``np.std([t.predict(X) for t in model.estimators_], axis=0)``,
    X being what the forest gives its trees (float32) or bagging its members (its columns)."""
    forest = model[-1] if hasattr(model, "steps") else model
    x = model[:-1].transform(nb.rows) if hasattr(model, "steps") else nb.rows
    x = np.asarray(x, dtype=np.float32 if hasattr(forest, "_validate_X_predict") else None)
    features = getattr(forest, "estimators_features_", None)
    predictions = [
        t.predict(x if features is None else x[:, features[i]])
        for i, t in enumerate(forest.estimators_)
    ]
    return _image(nb, np.std(predictions, axis=0).astype(np.float32), FLOAT_NODATA, "float32")


def quantiles(nb: Notebook, model: Any, levels: Sequence[float]) -> np.ndarray:
    """``model.predict(X, quantiles=levels)``: bands x rows x cols float32."""
    values = np.asarray(quiet_predict(model.predict, nb.rows, quantiles=list(levels)))
    values = values.reshape(len(nb.rows), len(levels)).astype(np.float32)
    return np.stack([_image(nb, values[:, j], FLOAT_NODATA, "float32") for j in range(len(levels))])


def legend_probabilities(model: Any, rows: pd.DataFrame, legend: Sequence[Any]) -> np.ndarray:
    """``predict_proba`` with its columns put in the legend's order (0 for a label the model
    does not know)."""
    raw = np.asarray(quiet_predict(model.predict_proba, rows), dtype=np.float64)
    out = np.zeros((raw.shape[0], len(legend)))
    for j, label in enumerate(model.classes_):
        out[:, list(legend).index(label)] = raw[:, j]
    return out


def entropy_formula(p: np.ndarray) -> np.ndarray:
    """-sum p log p / log K, 0 log 0 = 0; 0 for K = 1."""
    k = p.shape[1]
    if k == 1:
        return np.zeros(p.shape[0])
    h = np.zeros(p.shape[0])
    for j in range(k):
        col = p[:, j]
        nz = col > 0
        h[nz] -= col[nz] * np.log(col[nz])
    return h / np.log(k)


def margin_formula(p: np.ndarray) -> np.ndarray:
    """Top probability minus the second."""
    ordered = np.sort(p, axis=1)
    return ordered[:, -1] - (ordered[:, -2] if p.shape[1] > 1 else 0.0)


def encoded(nb: Notebook, values: np.ndarray, dtype: str) -> np.ndarray:
    """As probabilities are written: whole percent (255 masked) or float32 (NaN masked)."""
    if dtype == "uint8":
        return _image(nb, np.rint(values * 100).astype(np.uint8), 255, "uint8")
    return _image(nb, values.astype(np.float32), np.nan, "float32")


def applicability(
    nb: Notebook,
    train: np.ndarray,
    weights: Sequence[float] | None = None,
    folds: Sequence[Any] | None = None,
) -> tuple[np.ndarray, np.ndarray, ReferenceAoa]:
    """(DI float32 image, AOA uint8 image, the brute-force result) over every unmasked pixel."""
    ref = reference_aoa(train, nb.rows.to_numpy(dtype=np.float64), weights, folds)
    di = _image(nb, ref.di.astype(np.float32), FLOAT_NODATA, "float32")
    return di, _image(nb, ref.aoa, 255, "uint8"), ref


def _histogram(values: np.ndarray) -> tuple[Any, Any]:
    """numpy's 20 bins, or (None, None) where they are not distinct (numpy 2 raises
    ValueError, numpy 1 an IndexError)."""
    try:
        counts, edges = np.histogram(values, bins=20)
    except (ValueError, IndexError):
        return None, None
    return (counts, edges) if np.all(np.diff(edges) > 0) else (None, None)


def float_statistics(band: np.ndarray, nodata: float = FLOAT_NODATA) -> dict[str, Any]:
    """numpy's statistics of a written float band's valid values (finite, not nodata)."""
    values = band[np.isfinite(band) & (band != nodata)].ravel()
    if not values.size:
        return {"count": 0}
    counts, edges = _histogram(values)
    if counts is None:  # float32 cannot hold 20 edges: the README's rule, in float64
        counts, edges = _histogram(values.astype(np.float64))
    if counts is None:  # nor float64: one bin
        counts, edges = np.array([values.size]), np.array([values.min(), values.max()])
    wide = values.astype(np.float64)
    return {
        "count": int(values.size),
        "min": float(values.min()),
        "max": float(values.max()),
        "mean": float(wide.mean()),
        "std": float(wide.std()),
        "percentile_2": float(np.percentile(values, 2)),
        "percentile_98": float(np.percentile(values, 98)),
        "histogram": {"edges": [float(e) for e in edges], "counts": counts.tolist()},
    }


def assert_statistics(got: dict[str, Any], band: np.ndarray, nodata: float = FLOAT_NODATA) -> None:
    """The report's statistics of a band equal numpy's on the band: counts, min, max,
    percentiles and histogram exactly; mean and std to float64 rounding (streamed sums)."""
    want = float_statistics(band, nodata)
    for key in ("count", "min", "max", "percentile_2", "percentile_98", "histogram"):
        assert got[key] == want[key], (key, got[key], want[key])
    for key in ("mean", "std"):
        assert np.isclose(got[key], want[key], rtol=1e-9, atol=0), (key, got[key], want[key])
