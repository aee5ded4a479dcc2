"""The highest class probability of each pixel."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...config import OutputConfig
from ...models.legend import Legend
from .base import OutputKind, RasterSpec, Rows
from .encoding import encode_proba, item_bytes, proba_raster

if TYPE_CHECKING:
    from ...aoa import AoaModel


class Confidence(OutputKind):
    key = "confidence"
    what = "highest class probability"
    task = "classification"
    needs = "predict_proba"

    def spec(self, out: OutputConfig, legend: Legend, aoa: AoaModel | None) -> RasterSpec:
        assert out.confidence is not None
        return RasterSpec(self, out.confidence, 1, **proba_raster(out), descriptions=(self.key,))

    def work_bytes(self, out: OutputConfig, classes: int, layers: int) -> int:
        return 8 + item_bytes(out)

    def compute(self, rows: Rows) -> np.ndarray:
        return encode_proba(rows.proba.max(axis=1), rows.out.probabilities_dtype)


KIND = Confidence()
