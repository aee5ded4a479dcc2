"""Quantiles of a quantile regression forest: its own ``predict(X, quantiles=levels)``, one
band per level, rows in blocks to bound the (rows x levels) array."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rasterio.enums import Resampling

from ...config import FLOAT_NODATA, OutputConfig
from ...models.legend import Legend
from ...models.task import QUANTILE_HINT, Abilities
from .base import RasterSpec, Rows
from .floats import FloatRaster

if TYPE_CHECKING:
    from ...aoa import AoaModel

BLOCK_ROWS = 1 << 14  # rows per quantile-forest predict


def forest_quantiles(model: Any, frame: Any, levels: Sequence[float]) -> np.ndarray:
    """``model.predict(frame, quantiles=levels)`` as rows x levels float64, in row blocks."""
    rows = len(frame)
    out = np.empty((rows, len(levels)), dtype=np.float64)
    for start in range(0, rows, BLOCK_ROWS):
        part = frame[start : start + BLOCK_ROWS]
        values = np.asarray(model.predict(part, quantiles=list(levels)), dtype=np.float64)
        out[start : start + BLOCK_ROWS] = values.reshape(len(part), len(levels))
    return out


def _levels(out: OutputConfig) -> list[float]:
    assert out.quantiles is not None
    return list(out.quantiles["levels"])


class Quantiles(FloatRaster):
    key = "quantiles"
    what = "quantiles of a quantile forest"
    task = "regression"
    needs = "quantiles"

    def path(self, out: OutputConfig) -> Path | None:
        return None if out.quantiles is None else Path(out.quantiles["path"])

    def spec(self, out: OutputConfig, legend: Legend, aoa: AoaModel | None) -> RasterSpec:
        levels = _levels(out)
        path = self.path(out)
        assert path is not None
        middle = min(range(len(levels)), key=lambda i: abs(levels[i] - 0.5))
        return RasterSpec(
            self,
            path,
            len(levels),
            "float32",
            FLOAT_NODATA,
            Resampling.average,
            tuple(f"quantile {q:g}" for q in levels),
            band_tags=tuple({"quantile": repr(float(q))} for q in levels),
            styled_band=middle,
        )

    def describe(self, spec: RasterSpec) -> str:
        return f"{self.what} " + ", ".join(f"{q:g}" for q in _levels_of(spec))

    def work_bytes(self, out: OutputConfig, classes: int, layers: int) -> int:
        return 16 * len(_levels(out))

    def compute(self, rows: Rows) -> np.ndarray:
        levels = forest_quantiles(rows.model, rows.frame, _levels(rows.out))
        return levels.T.astype(np.float32)

    def report(self, spec: RasterSpec, bands: list[dict[str, Any]]) -> dict[str, Any]:
        return {f"{q:g}": b for q, b in zip(_levels_of(spec), bands, strict=True)}

    def unsupported(self, abilities: Abilities) -> str | None:
        reason = super().unsupported(abilities)
        if reason is None and not abilities.quantiles:
            return (
                f"the model ({abilities.name}) is not a quantile forest: supported are "
                f"{QUANTILE_HINT}"
            )
        return reason


def _levels_of(spec: RasterSpec) -> list[float]:
    return [float(tags["quantile"]) for tags in spec.band_tags]


KIND = Quantiles()
