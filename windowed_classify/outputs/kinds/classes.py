"""The class raster (key ``path`` of a classification): each pixel's class code."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rasterio.enums import Resampling

from ...config import OutputConfig
from ...models.legend import Legend
from ...models.task import predicts_by_argmax
from ..style import colormap, palette, write_style
from ..tallies import ClassTally
from .base import OutputKind, RasterSpec, Rows

if TYPE_CHECKING:
    from ...aoa import AoaModel
    from ..tallies import Tally


class Classes(OutputKind):
    key = "path"
    what = "classes"
    task = "classification"

    def path(self, out: OutputConfig) -> Path | None:
        return out.path

    def spec(self, out: OutputConfig, legend: Legend, aoa: AoaModel | None) -> RasterSpec:
        assert out.dtype is not None and out.nodata is not None
        codes = legend.output_codes
        table = None
        if out.dtype in ("uint8", "uint16"):  # GeoTIFF colour tables: 8 and 16 bit only
            table = colormap(codes, palette(len(codes)), int(out.nodata))
        return RasterSpec(
            self,
            out.path,
            1,
            out.dtype,
            out.nodata,
            Resampling.mode,
            ("class",),
            colormap=table,
            legend=legend,
        )

    def work_bytes(self, out: OutputConfig, classes: int, layers: int) -> int:
        return 16 * classes + 16  # the model's class scores, the labels and codes

    def compute(self, rows: Rows) -> np.ndarray:
        model = rows.model
        if rows.wants_proba and predicts_by_argmax(model):  # one call gives both, bit for bit
            predicted = model.classes_.take(np.argmax(rows.raw_proba, axis=1), axis=0)
        else:
            predicted = model.predict(rows.frame)
        return rows.to_codes(predicted)

    def tally(self, spec: RasterSpec) -> Tally:
        assert spec.legend is not None
        return ClassTally(spec.legend.output_codes, spec.nodata)

    def style(self, spec: RasterSpec, tally: Tally | None, pixels: int) -> dict[str, Path]:
        assert spec.legend is not None and isinstance(tally, ClassTally)
        codes, labels = spec.legend.output_codes, spec.legend.labels
        return write_style(spec.path, codes, labels, palette(len(codes)), tally.counts.tolist())


KIND = Classes()
