"""Top class probability minus the second (1 - margin: Burrough's confusion index); the top
probability itself when the legend has one class."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...config import OutputConfig
from ...models.legend import Legend
from .base import OutputKind, RasterSpec, Rows
from .encoding import encode_proba, item_bytes, proba_raster

if TYPE_CHECKING:
    from ...aoa import AoaModel


def class_margin(proba: np.ndarray) -> np.ndarray:
    """Top probability minus the second of each row of ``proba`` (rows x K), float64."""
    k = proba.shape[1]
    if k <= 1:
        return proba[:, 0].astype(np.float64) if k else np.zeros(proba.shape[0])
    top = np.partition(proba, k - 2, axis=1)[:, -2:]
    return top[:, 1] - top[:, 0]


class Margin(OutputKind):
    key = "margin"
    what = "top minus second class probability"
    task = "classification"
    needs = "predict_proba"

    def spec(self, out: OutputConfig, legend: Legend, aoa: AoaModel | None) -> RasterSpec:
        assert out.margin is not None
        return RasterSpec(self, out.margin, 1, **proba_raster(out), descriptions=(self.key,))

    def work_bytes(self, out: OutputConfig, classes: int, layers: int) -> int:
        return 8 * classes + 8 + item_bytes(out)

    def compute(self, rows: Rows) -> np.ndarray:
        return encode_proba(class_margin(rows.proba), rows.out.probabilities_dtype)


KIND = Margin()
