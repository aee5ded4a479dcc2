"""The predicted values (key ``path`` of a regression), cast to ``output.dtype``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rasterio.enums import Resampling

from ...config import OutputConfig
from ...errors import ModelError
from ...models.legend import Legend
from .base import RasterSpec, Rows
from .floats import FloatRaster

if TYPE_CHECKING:
    from ...aoa import AoaModel


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


class Prediction(FloatRaster):
    key = "path"
    what = "predicted values"
    task = "regression"
    report_key = "prediction"

    def path(self, out: OutputConfig) -> Path | None:
        return out.path

    def spec(self, out: OutputConfig, legend: Legend, aoa: AoaModel | None) -> RasterSpec:
        assert out.dtype is not None and out.nodata is not None
        return RasterSpec(
            self, out.path, 1, out.dtype, out.nodata, Resampling.average, ("prediction",)
        )

    def work_bytes(self, out: OutputConfig, classes: int, layers: int) -> int:
        return 16

    def compute(self, rows: Rows) -> np.ndarray:
        predicted = regression_values(rows.model.predict(rows.frame), rows.count)
        assert rows.out.dtype is not None
        return predicted.astype(rows.out.dtype)


KIND = Prediction()
