"""The area of applicability: 1 where the dissimilarity index is at most the training
threshold, 0 outside, 255 masked; a two-entry colour table and a paletted style."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rasterio.enums import Resampling

from ...config import OutputConfig
from ...models.legend import Legend
from ..ramps import aoa_colormap, write_aoa_style
from ..tallies import InsideTally
from .base import OutputKind, RasterSpec, Rows

if TYPE_CHECKING:
    from ...aoa import AoaModel
    from ..tallies import Tally

NODATA = 255


class AreaOfApplicability(OutputKind):
    key = "aoa"
    what = "area of applicability (1 inside, 0 outside)"
    needs = "aoa"

    def spec(self, out: OutputConfig, legend: Legend, aoa: AoaModel | None) -> RasterSpec:
        assert out.aoa is not None
        return RasterSpec(
            self,
            out.aoa,
            1,
            "uint8",
            NODATA,
            Resampling.mode,
            ("area of applicability",),
            tags={"encoding": "1 = inside, 0 = outside, 255 = masked"},
            colormap=aoa_colormap(NODATA),
        )

    def work_bytes(self, out: OutputConfig, classes: int, layers: int) -> int:
        return 2

    def compute(self, rows: Rows) -> np.ndarray:
        return rows.applicability[1]

    def tally(self, spec: RasterSpec) -> Tally:
        return InsideTally()

    def style(self, spec: RasterSpec, tally: Tally | None, pixels: int) -> dict[str, Path]:
        return write_aoa_style(spec.path)


KIND = AreaOfApplicability()
