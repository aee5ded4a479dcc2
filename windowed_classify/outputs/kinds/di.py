"""The dissimilarity index of Meyer & Pebesma (2021): each pixel's filled row's distance to
the nearest training row, over the training rows' mean distance."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from rasterio.enums import Resampling

from ...config import FLOAT_NODATA, OutputConfig
from ...models.legend import Legend
from .base import RasterSpec, Rows
from .floats import FloatRaster

if TYPE_CHECKING:
    from ...aoa import AoaModel


class DissimilarityIndex(FloatRaster):
    key = "di"
    what = "dissimilarity index"
    needs = "aoa"

    def spec(self, out: OutputConfig, legend: Legend, aoa: AoaModel | None) -> RasterSpec:
        assert out.di is not None
        return RasterSpec(
            self,
            out.di,
            1,
            "float32",
            FLOAT_NODATA,
            Resampling.average,
            ("dissimilarity index",),
            at_most=None if aoa is None else aoa.threshold,  # the share inside the AOA
        )

    def compute(self, rows: Rows) -> np.ndarray:
        return rows.applicability[0]


KIND = DissimilarityIndex()
