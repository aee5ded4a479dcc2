"""Pass 2, one window: read -> mask -> fill -> frame -> predict -> codes.

The semantics live in small pure functions over numpy arrays; ``WindowClassifier`` wires them
to a reader and a model. A ``ClassifyJob`` is everything a worker needs, and it is small and
picklable: workers load the model themselves, once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rasterio.windows import Window

from .errors import ModelError
from .model import CodeMapper, Legend, load_model
from .stack import Layer, StackReader


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


def model_frame(x: np.ndarray, features: tuple[str, ...], int_columns: tuple[bool, ...]):
    """One DataFrame, columns = the model's features in its order.

    float32 like the notebook's frame; a column the model was trained on as integers is given
    as int64 when every value is whole (AutoML rejects floats there only as NaN, never reached).
    """
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
    legend: Legend
    out_dtype: str
    out_nodata: int
    model_path: Path
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

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

    def __call__(self, window: Window) -> np.ndarray:
        values, invalid = self.reader.read(window)
        codes = classify_values(values, invalid, self.job, self.model, self.to_codes)
        return codes.reshape(int(window.height), int(window.width))

    def close(self) -> None:
        self.reader.close()


def classify_values(
    values: np.ndarray, invalid: np.ndarray, job: ClassifyJob, model: Any, to_codes: CodeMapper
) -> np.ndarray:
    """Codes for one window's (layers, pixels) values; masked pixels never reach the model."""
    masked = masked_pixels(invalid, job.threshold)
    codes = np.full(values.shape[1], job.out_nodata, dtype=job.out_dtype)
    keep = ~masked
    if not keep.any():
        return codes  # all masked: the model is not called
    x = filled(values, invalid, job.medians, keep)
    try:
        predicted = model.predict(model_frame(x, job.features, job.int_columns))
    except Exception as exc:  # the model's own error: name the model; --debug shows the cause
        raise ModelError(
            f"the model {job.model_path} failed to predict: {type(exc).__name__}: {exc}"
        ) from exc
    codes[keep] = to_codes(predicted)
    return codes
