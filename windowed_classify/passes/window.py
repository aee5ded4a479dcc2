"""Pass 2, one window: read -> mask -> fill -> frame -> predict -> every output asked.

The semantics live in small pure functions over numpy arrays; ``WindowPredictor`` wires them
to a reader and a model. A ``PredictJob`` is everything a worker needs, and it is small and
picklable: workers load the model themselves, once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
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
from ..inputs.hints import Summary
from ..inputs.layers import Layer
from ..inputs.windows import WindowKey
from ..models.legend import CodeMapper, Legend
from ..outputs.kinds import RasterSpec, Rows, raster_specs
from ..outputs.results import WindowResult
from .band import LayerCounts
from .counting import CountSpec, count_window
from .executor import WorkerLost
from .spill import read_rows, rows_path
from .worker import WorkerState


def masked_pixels(invalid: np.ndarray, threshold: int) -> np.ndarray:
    """A pixel is masked when more than ``threshold`` of its layers are nodata."""
    if threshold == 0:
        return np.any(invalid, axis=0)
    return np.count_nonzero(invalid, axis=0) > threshold


def filled(
    values: np.ndarray, invalid: np.ndarray, medians: np.ndarray, keep: np.ndarray
) -> np.ndarray:
    """The kept pixels as a C-ordered (kept, layers) array, nodata replaced by layer medians.

    Row-major pixels x layers is the layout scikit-learn works on: a transposed view would
    cost it a copy (about 20% of a RandomForest's predict time).
    """
    # pick the kept columns, then transpose: twice as fast as indexing the transposed array
    x = np.ascontiguousarray(np.compress(keep, values, axis=1).T)
    bad = np.compress(keep, invalid, axis=1).T
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

    Small (a few KB, more with an AOA's training rows) and picklable. Item: (window index,
    window). With ``count``, the window's values are counted for pass 1 too; with ``defer``
    (medians not known yet, nodata.threshold above 0), the rows that need a median fill are
    kept on the worker's disk and predicted once the medians are known (``FillJob``).
    """

    layers: tuple[Layer, ...]  # the model's layers, in the model's order
    int_columns: tuple[bool, ...]
    medians: np.ndarray  # float32, one per layer (NaN while not known)
    threshold: int
    legend: Legend  # empty for a regression
    out: OutputConfig  # resolved for the task: which rasters, their dtype and nodata
    task: str
    model_path: Path
    array_input: bool = False  # the model gets a plain array (trained without feature names)
    aoa: AoaModel | None = None  # the area of applicability, when an output needs it
    count: CountSpec | None = None  # pass 1 counted from these reads
    defer: bool = False
    guide: bool = False  # also summarise the counted layers' values (the guide's hints)
    refill: bool = False  # say which pixels needed a fill (their deferred rows were lost)
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

    def __call__(self, item: tuple[int, WindowKey], worker: WorkerState) -> Predicted:
        index, key = item
        window = Window(*key)
        reader = worker.reader(self.token, self.layers)
        before = reader.counts.total
        values, invalid = reader.read(window)
        counts = summaries = None
        if self.count is not None:
            dtypes = [self.layers[row].dtype for row in self.count.rows] if self.guide else None
            counts, summaries = count_window(values, invalid, self.count, index, worker, dtypes)
        masked = masked_pixels(invalid, self.threshold)
        guided = None
        if self.guide and summaries is not None:
            guided = (int(np.count_nonzero(~masked & invalid.any(axis=0))), summaries)
        deferred = None
        pending: np.ndarray | None
        if self.defer:  # rows that need a fill wait for the medians, on this worker's disk
            pending = ~masked & invalid.any(axis=0)
            if pending.any():
                rows = np.flatnonzero(pending)
                kept = np.where(invalid.T[pending], np.float32(np.nan), values.T[pending])
                spills = worker.spills(self.token, self.count.spill if self.count else None)
                deferred = spills.rows(index, rows, kept)[0]
                masked = masked | pending
            else:
                pending = None
        else:
            pending = None
        model, to_codes = self.model_and_codes(worker)
        result = predict_values(values, invalid, self, model, to_codes, masked)
        result.pending = pending
        shape = (int(window.height), int(window.width))
        patch = (~masked & invalid.any(axis=0)).reshape(shape) if self.refill else None
        return Predicted(
            result.reshaped(*shape),
            worker.id,
            counts,
            deferred,
            reader.counts.total - before,
            patch,
            guided,
        )

    def model_and_codes(self, worker: WorkerState) -> tuple[Any, CodeMapper]:
        model = worker.model(self.model_path)
        return model, worker.memo(self.token, "codes", lambda: CodeMapper(self.legend))


@dataclass
class Predicted:
    """A worker's answer for one window: its outputs, and what pass 1 and the deferred fills
    need to know of it."""

    result: WindowResult
    worker: str
    counts: list[LayerCounts] | None = None
    deferred: int | None = None  # offset of its pending rows in the worker's rows file
    retries: int = 0
    patch: np.ndarray | None = None  # refill: the pixels that needed a fill (height, width)
    guided: tuple[int, list[Summary]] | None = None  # the guide's: pixels to fill, hints


@dataclass
class Filled:
    """The outputs of a window's rows that waited for a fill: pixels in the window, and per
    raster key (bands, rows) values."""

    pixels: np.ndarray
    values: dict[str, np.ndarray]


@dataclass(frozen=True, eq=False)
class FillJob:
    """Fills the rows a window kept for later with the medians, now known, and predicts them.
    Item: (window index, window, holder, offset of the record in the holder's rows file)."""

    job: PredictJob  # the pass-2 job whose rows these are (its medians now known)
    folder: Path | None  # where the rows are (None: the worker's own disk)

    @property
    def token(self) -> str:
        return self.job.token

    def __call__(self, item: tuple[int, WindowKey, str, int], worker: WorkerState) -> Filled:
        index, key, holder, offset = item
        if self.folder is None and worker.id != holder:  # a new worker at the holder's address
            raise WorkerLost(holder)
        root = self.folder if self.folder is not None else worker.scratch
        assert root is not None
        _, pixels, x = read_rows(
            rows_path(root / self.job.token, holder), offset, len(self.job.layers)
        )
        bad = np.isnan(x)
        if bad.any():
            np.copyto(x, np.broadcast_to(self.job.medians[None, :], x.shape), where=bad)
        model, to_codes = self.job.model_and_codes(worker)
        return Filled(pixels, predict_rows(x, self.job, model, to_codes))


def empty_result(job: PredictJob, pixels: int) -> WindowResult:
    """Every output the job asks for, all pixels at its masked value."""
    return WindowResult({spec.key: spec.empty(pixels) for spec in job.specs})


def predict_values(
    values: np.ndarray,
    invalid: np.ndarray,
    job: PredictJob,
    model: Any,
    to_codes: CodeMapper,
    masked: np.ndarray | None = None,
) -> WindowResult:
    """Outputs for one window's (layers, pixels) values; masked pixels never reach the model
    (``masked``: those of job.threshold, or more)."""
    if masked is None:
        masked = masked_pixels(invalid, job.threshold)
    result = empty_result(job, values.shape[1])
    keep = ~masked
    if not keep.any():
        return result  # all masked: the model is not called
    x = filled(values, invalid, job.medians, keep)
    for key, rows in predict_rows(x, job, model, to_codes).items():
        result.values[key][..., keep] = rows
    return result


def predict_rows(
    x: np.ndarray, job: PredictJob, model: Any, to_codes: CodeMapper
) -> dict[str, np.ndarray]:
    """Every output of filled rows (rows x layers): per raster key, (rows,) or (bands, rows)."""
    frame = model_frame(x, job.features, job.int_columns, job.array_input)
    rows = Rows(x, frame, model, job.out, job.legend, to_codes, job.aoa, job.wants_proba)
    # scikit-learn sums X to check it is finite: valid values near float32's maximum overflow
    # that sum, which only warns (the notebook's predict does the same)
    with np.errstate(over="ignore", invalid="ignore"), model_errors(job):
        return {spec.key: spec.kind.compute(rows) for spec in job.specs}


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
