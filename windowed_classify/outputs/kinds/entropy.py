"""Normalised class entropy: Shannon entropy of the class probabilities divided by log K
(0: certain, 1: every class equally likely); 0 when the legend has one class. Zero
probabilities add nothing (0 log 0 = 0)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...config import OutputConfig
from ...models.legend import Legend
from .base import OutputKind, RasterSpec, Rows
from .encoding import encode_proba, item_bytes, proba_raster

if TYPE_CHECKING:
    from ...aoa import AoaModel


def class_entropy(proba: np.ndarray) -> np.ndarray:
    """Normalised Shannon entropy of each row of ``proba`` (rows x K), float64."""
    k = proba.shape[1]
    if k <= 1:
        return np.zeros(proba.shape[0], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(proba > 0, proba * np.log(proba), 0.0)
    return -terms.sum(axis=1) / np.log(k) + 0.0  # + 0.0: a certain row is +0, not -0


class Entropy(OutputKind):
    key = "entropy"
    what = "normalised class entropy"
    task = "classification"
    needs = "predict_proba"

    def spec(self, out: OutputConfig, legend: Legend, aoa: AoaModel | None) -> RasterSpec:
        assert out.entropy is not None
        return RasterSpec(self, out.entropy, 1, **proba_raster(out), descriptions=(self.key,))

    def work_bytes(self, out: OutputConfig, classes: int, layers: int) -> int:
        return 8 * classes + 8 + item_bytes(out)

    def compute(self, rows: Rows) -> np.ndarray:
        return encode_proba(class_entropy(rows.proba), rows.out.probabilities_dtype)


KIND = Entropy()
