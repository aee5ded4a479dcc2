"""Pass 2, one window: read -> mask -> fill -> frame -> predict -> every output asked.

The semantics live in small pure functions over numpy arrays; ``WindowPredictor`` wires them
to a reader and a model. A ``PredictJob`` is everything a worker needs, and it is small and
picklable: workers load the model themselves, once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rasterio.windows import Window

from ..aoa import AoaModel
from ..config import OutputConfig
from ..errors import ModelError
from ..inputs.layers import Layer
from ..inputs.reader import StackReader
from ..models.legend import CodeMapper, Legend
from ..models.load import load_model
from ..outputs.kinds import RasterSpec, Rows, raster_specs
from ..outputs.results import WindowResult


def masked_pixels(invalid: np.ndarray, threshold: int) -> np.ndarray:
    """A pixel is masked when more than ``threshold`` of its layers are nodata."""
    if threshold == 0:
        return invalid.any(axis=0)
    return np.count_nonzero(invalid, axis=0) > threshold


def filled(
    values: np.ndarray, invalid: np.ndarray, medians: np.ndarray, keep: np.ndarray
) -> np.ndarray:
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
) -> Any:
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
class PredictJob:
    """What a worker needs for pass 2; no model object inside (workers load it once).

    Small (a few KB, more with an AOA's training rows) and picklable. ``token`` tells a
    worker whether a window belongs to the job whose rasters it already has open.
    """

    layers: tuple[Layer, ...]  # the model's layers, in the model's order
    int_columns: tuple[bool, ...]
    medians: np.ndarray  # float32, one per layer
    threshold: int
    legend: Legend  # empty for a regression
    out: OutputConfig  # resolved for the task: which rasters, their dtype and nodata
    task: str
    model_path: Path
    array_input: bool = False  # the model gets a plain array (trained without feature names)
    aoa: AoaModel | None = None  # the area of applicability, when an output needs it
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    @cached_property
    def specs(self) -> list[RasterSpec]:
        """Every raster the job computes, the main one first."""
        return raster_specs(self.out, self.task, self.legend, self.aoa)

    @cached_property
    def wants_proba(self) -> bool:
        return any(spec.kind.needs == "predict_proba" for spec in self.specs)


class WindowPredictor:
    """Per-worker state: open rasters, the model, the code mapper."""

    def __init__(self, job: PredictJob, model: Any | None = None):
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
        result = predict_values(values, invalid, self.job, self.model, self.to_codes)
        return result.reshaped(int(window.height), int(window.width))

    def close(self) -> None:
        self.reader.close()


class Predictors:
    """One WindowPredictor per job (open rasters are reused across that job's windows)."""

    def __init__(self, model: Any):
        self.model = model
        self.job: PredictJob | None = None
        self.predictor: WindowPredictor | None = None

    def get(self, job: PredictJob) -> WindowPredictor:
        if self.predictor is None or self.job is None or self.job.token != job.token:
            self.close()
            self.predictor, self.job = WindowPredictor(job, self.model), job
        return self.predictor

    def close(self) -> None:
        if self.predictor is not None:
            self.predictor.close()
            self.predictor = None


def empty_result(job: PredictJob, pixels: int) -> WindowResult:
    """Every output the job asks for, all pixels at its masked value."""
    return WindowResult({spec.key: spec.empty(pixels) for spec in job.specs})


def predict_values(
    values: np.ndarray, invalid: np.ndarray, job: PredictJob, model: Any, to_codes: CodeMapper
) -> WindowResult:
    """Outputs for one window's (layers, pixels) values; masked pixels never reach the model."""
    masked = masked_pixels(invalid, job.threshold)
    result = empty_result(job, values.shape[1])
    keep = ~masked
    if not keep.any():
        return result  # all masked: the model is not called
    x = filled(values, invalid, job.medians, keep)
    frame = model_frame(x, job.features, job.int_columns, job.array_input)
    rows = Rows(x, frame, model, job.out, job.legend, to_codes, job.aoa, job.wants_proba)
    # scikit-learn sums X to check it is finite: valid values near float32's maximum overflow
    # that sum, which only warns (the notebook's predict does the same)
    with np.errstate(over="ignore", invalid="ignore"), model_errors(job):
        for spec in job.specs:
            result.values[spec.key][..., keep] = spec.kind.compute(rows)
    return result


@contextmanager
def model_errors(job: PredictJob) -> Iterator[None]:
    """The model's own error: name the model; --debug shows the cause."""
    try:
        yield
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(
            f"the model {job.model_path} failed to predict: {type(exc).__name__}: {exc}"
        ) from exc
