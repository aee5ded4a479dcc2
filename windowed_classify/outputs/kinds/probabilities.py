"""One band per class: its probability, in the legend's code order."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...config import OutputConfig
from ...models.legend import Legend
from .base import OutputKind, RasterSpec, Rows
from .encoding import encode_proba, item_bytes, proba_raster

if TYPE_CHECKING:
    from ...aoa import AoaModel


class Probabilities(OutputKind):
    key = "probabilities"
    what = "one probability band per class"
    task = "classification"
    needs = "predict_proba"

    def spec(self, out: OutputConfig, legend: Legend, aoa: AoaModel | None) -> RasterSpec:
        pairs = list(zip(legend.output_codes, legend.labels, strict=True))
        assert out.probabilities is not None
        return RasterSpec(
            self,
            out.probabilities,
            len(pairs),
            **proba_raster(out),
            descriptions=tuple(str(label) for _, label in pairs),
            band_tags=tuple({"code": str(c), "label": str(label)} for c, label in pairs),
        )

    def work_bytes(self, out: OutputConfig, classes: int, layers: int) -> int:
        return (8 + item_bytes(out)) * classes

    def compute(self, rows: Rows) -> np.ndarray:
        return encode_proba(rows.proba, rows.out.probabilities_dtype).T


KIND = Probabilities()
