"""Pass 2, one window: read -> mask -> fill -> frame -> predict -> codes (or values).

The semantics live in small pure functions over numpy arrays; ``WindowClassifier`` wires them
to a reader and a model. A ``ClassifyJob`` is everything a worker needs, and it is small and
picklable: workers load the model themselves, once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rasterio.windows import Window

from ..aoa import AoaModel
from ..config import FLOAT_NODATA
from ..errors import ModelError
from ..inputs.layers import Layer
from ..inputs.reader import StackReader
from ..models.legend import CodeMapper, Legend, order_probabilities
from ..models.load import load_model
from ..outputs.results import AOA_NODATA, WindowResult, encode_proba, proba_fill
from .uncertainty import (
    class_entropy,
    class_margin,
    forest_quantiles,
    regression_values,
    tree_spread,
)


def masked_pixels(invalid: np.ndarray, threshold: int) -> np.ndarray:
    """A pixel is masked when more than ``threshold`` of its layers are nodata."""
    if threshold == 0:
        return invalid.any(axis=0)
    return np.count_nonzero(invalid, axis=0) > threshold


def filled(values: np.ndarray, invalid: np.ndarray, medians: np.ndarray, keep: np.ndarray):
    """The kept pixels as a C-ordered (kept, layers) array, nodata replaced by layer medians.

    Row-major pixels x layers is the layout scikit-learn works on: a transposed view would
    cost it a copy (about 20% of a RandomForest's predict time).
    """
    x = values.T[keep]
    bad = invalid.T[keep]
    if bad.any():
        np.copyto(x, np.broadcast_to(medians[None, :], x.shape), where=bad)
    return x


def model_frame(
    x: np.ndarray, features: tuple[str, ...], int_columns: tuple[bool, ...], array: bool = False
):
    """One DataFrame, columns = the model's features in its order (``array``: ``x`` itself,
    for a model trained without feature names).

    float32 like the notebook's frame; a column the model was trained on as integers is given
    as int64 when every value is whole (AutoML rejects floats there only as NaN, never reached).
    """
    if array:
        return x
    if not any(int_columns):
        return pd.DataFrame(x, columns=list(features), copy=False)
    data: dict[str, np.ndarray] = {}
    for j, (name, is_int) in enumerate(zip(features, int_columns, strict=True)):
        column = x[:, j]
        if is_int and np.array_equal(column, np.trunc(column)):
            data[name] = column.astype(np.int64)
        else:
            data[name] = column
    return pd.DataFrame(data, columns=list(features), copy=False)


@dataclass(frozen=True, eq=False)
class ClassifyJob:
    """What a worker needs for pass 2; no model object inside (workers load it once).

    Small (a few KB) and picklable: it travels with each task. ``token`` tells a worker
    whether a task belongs to the job whose rasters it already has open.
    """

    layers: tuple[Layer, ...]  # the model's layers, in the model's order
    int_columns: tuple[bool, ...]
    medians: np.ndarray  # float32, one per layer
    threshold: int
    legend: Legend  # empty for a regression
    out_dtype: str
    out_nodata: float  # an int code for classes
    model_path: Path
    probabilities: bool = False  # also return one probability band per class
    confidence: bool = False  # also return the highest class probability
    proba_dtype: str = "uint8"  # uint8: percent 0-100, 255 masked; float32: 0-1, NaN masked
    array_input: bool = False  # the model gets a plain array (trained without feature names)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    task: str = "classification"  # or "regression": the output holds predicted values
    entropy: bool = False  # classes: normalised entropy of the probabilities
    margin: bool = False  # classes: top probability minus the second
    spread: bool = False  # regression: standard deviation of a forest's members
    quantiles: tuple[float, ...] = ()  # regression: a quantile forest's levels
    aoa: AoaModel | None = None  # the area of applicability (DI and AOA), when asked
    di: bool = False  # return the dissimilarity index (needs aoa)
    inside: bool = False  # return the AOA mask (needs aoa)

    @property
    def wants_proba(self) -> bool:
        return self.probabilities or self.confidence or self.entropy or self.margin

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)


class WindowClassifier:
    """Per-worker state: open rasters, the model, the code mapper."""

    def __init__(self, job: ClassifyJob, model: Any | None = None):
        self.job = job
        self.reader = StackReader(job.layers)
        self.model = model if model is not None else load_model(job.model_path)
        self.to_codes = CodeMapper(job.legend)

    def __call__(
        self,
        window: Window,
        observe: Callable[[Window, np.ndarray, np.ndarray], object] | None = None,
    ) -> WindowResult:
        """Read, predict, and hand the values read to ``observe`` (pass 1 fused into 2)."""
        values, invalid = self.reader.read(window)
        if observe is not None:
            observe(window, values, invalid)
        result = classify_values(values, invalid, self.job, self.model, self.to_codes)
        return result.reshaped(int(window.height), int(window.width))

    def close(self) -> None:
        self.reader.close()


def _predict_from_proba(model: Any) -> bool:
    """True when ``model.predict`` is by construction ``classes_[argmax(predict_proba)]``.

    Then one predict_proba call gives both the codes and the probabilities, bit for bit what
    predict returns. Only for scikit-learn's forests (single output), whose predict is exactly
    that; any other model gets both calls.
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


def empty_result(job: ClassifyJob, n: int) -> WindowResult:
    """Every output the job asks for, all pixels at its masked value."""
    result = WindowResult(np.full(n, job.out_nodata, dtype=job.out_dtype))
    fill = proba_fill(job.proba_dtype)
    if job.probabilities:
        result.probabilities = np.full((len(job.legend.labels), n), fill, dtype=job.proba_dtype)
    if job.confidence:
        result.confidence = np.full(n, fill, dtype=job.proba_dtype)
    for key in ("entropy", "margin"):
        if getattr(job, key):
            result.bands[key] = np.full(n, fill, dtype=job.proba_dtype)
    if job.spread:
        result.bands["spread"] = np.full(n, FLOAT_NODATA, dtype=np.float32)
    if job.quantiles:
        result.bands["quantiles"] = np.full((len(job.quantiles), n), FLOAT_NODATA, np.float32)
    if job.di:
        result.bands["di"] = np.full(n, FLOAT_NODATA, dtype=np.float32)
    if job.inside:
        result.bands["aoa"] = np.full(n, AOA_NODATA, dtype=np.uint8)
    return result


def classify_values(
    values: np.ndarray, invalid: np.ndarray, job: ClassifyJob, model: Any, to_codes: CodeMapper
) -> WindowResult:
    """Outputs for one window's (layers, pixels) values; masked pixels never reach the model."""
    masked = masked_pixels(invalid, job.threshold)
    result = empty_result(job, values.shape[1])
    keep = ~masked
    if not keep.any():
        return result  # all masked: the model is not called
    x = filled(values, invalid, job.medians, keep)
    if job.aoa is not None:  # before the model: the rows exactly as filled
        applicability(x, job.aoa, result, keep)
    frame = model_frame(x, job.features, job.int_columns, job.array_input)
    # scikit-learn sums X to check it is finite: valid values near float32's maximum overflow
    # that sum, which only warns (the notebook's predict does the same)
    with np.errstate(over="ignore", invalid="ignore"), model_errors(job):
        if job.task == "regression":
            predict_values(frame, job, model, result, keep)
        else:
            predict_classes(frame, job, model, to_codes, result, keep)
    return result


@contextmanager
def model_errors(job: ClassifyJob) -> Iterator[None]:
    """The model's own error: name the model; --debug shows the cause."""
    try:
        yield
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(
            f"the model {job.model_path} failed to predict: {type(exc).__name__}: {exc}"
        ) from exc


def predict_classes(
    frame: Any,
    job: ClassifyJob,
    model: Any,
    to_codes: CodeMapper,
    result: WindowResult,
    keep: np.ndarray,
) -> None:
    """Codes and the probability outputs of the kept pixels."""
    if not job.wants_proba:
        result.codes[keep] = to_codes(model.predict(frame))
        return
    raw = model.predict_proba(frame)
    proba = order_probabilities(model, raw, job.legend)
    if _predict_from_proba(model):
        predicted = model.classes_.take(np.argmax(raw, axis=1), axis=0)
    else:
        predicted = model.predict(frame)
    result.codes[keep] = to_codes(predicted)
    if job.probabilities:
        assert result.probabilities is not None
        result.probabilities[:, keep] = encode_proba(proba, job.proba_dtype).T
    if job.confidence:
        assert result.confidence is not None
        result.confidence[keep] = encode_proba(proba.max(axis=1), job.proba_dtype)
    if job.entropy:
        result.bands["entropy"][keep] = encode_proba(class_entropy(proba), job.proba_dtype)
    if job.margin:
        result.bands["margin"][keep] = encode_proba(class_margin(proba), job.proba_dtype)


def predict_values(
    frame: Any, job: ClassifyJob, model: Any, result: WindowResult, keep: np.ndarray
) -> None:
    """A regression's values (cast to the output dtype) and its uncertainty outputs."""
    predicted = regression_values(model.predict(frame), int(np.count_nonzero(keep)))
    result.codes[keep] = predicted.astype(job.out_dtype)
    if job.spread:
        result.bands["spread"][keep] = tree_spread(model, frame).astype(np.float32)
    if job.quantiles:
        levels = forest_quantiles(model, frame, job.quantiles)
        result.bands["quantiles"][:, keep] = levels.T.astype(np.float32)


def applicability(x: np.ndarray, aoa: AoaModel, result: WindowResult, keep: np.ndarray) -> None:
    """The dissimilarity index and the AOA mask of the kept pixels' filled rows."""
    di, inside = aoa.predict(x)
    if "di" in result.bands:
        result.bands["di"][keep] = di
    if "aoa" in result.bands:
        result.bands["aoa"][keep] = inside
