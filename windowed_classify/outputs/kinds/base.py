"""What every output kind is: a raster a run can write, described once.

An ``OutputKind`` says, for one key of the output section, which task it serves, what the
model must be able to do for it, how its raster looks (``RasterSpec``: bands, dtype, nodata,
names, overviews), what a window costs per pixel, how a window's rows compute it, what is
counted in it as it is written, and how it is styled. The writer, the window's predictor,
``check``, the memory budget and the report read these; nothing else names an output.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from rasterio.enums import Resampling

from ...config import OutputConfig
from ...models.legend import CodeMapper, Legend, order_probabilities
from ...models.task import Abilities

if TYPE_CHECKING:
    from ...aoa import AoaModel
    from ..tallies import Tally

RGBA = tuple[int, int, int, int]

# What a kind needs of the model (or the run) beyond predict, and its per-pixel working cost,
# counted once however many kinds share it: the legend-ordered probabilities (raw and
# ordered, float64), the DI's rows (scaled, float64) and distances.
NEED_BYTES: dict[str, Callable[[int, int], int]] = {
    "predict_proba": lambda classes, layers: 16 * classes,
    "ensemble": lambda classes, layers: 0,
    "quantiles": lambda classes, layers: 0,
    "aoa": lambda classes, layers: 24 * layers + 16,
}


@dataclass
class RasterSpec:
    """One output GeoTIFF of a run, resolved: its bands, type, nodata, names and style."""

    kind: OutputKind
    path: Path
    count: int
    dtype: str
    nodata: float
    overview: Resampling
    descriptions: tuple[str, ...]
    tags: dict[str, str] = field(default_factory=dict)
    band_tags: tuple[dict[str, str], ...] = ()
    colormap: dict[int, RGBA] | None = None
    styled_band: int = 0  # 0-based band a colour ramp is stretched on
    legend: Legend | None = None  # the classes, for a class raster's style
    at_most: float | None = None  # count values <= this (the DI's AOA threshold)

    @property
    def key(self) -> str:
        return self.kind.key

    def empty(self, pixels: int) -> np.ndarray:
        """``pixels`` masked values: (pixels,) for one band, else (bands, pixels)."""
        shape = (pixels,) if self.count == 1 else (self.count, pixels)
        return np.full(shape, self.nodata, dtype=self.dtype)


class Rows:
    """The filled rows of one window, and what several outputs share about them, computed
    once on first use: the class probabilities in legend order, the DI and AOA."""

    def __init__(
        self,
        x: np.ndarray,
        frame: Any,
        model: Any,
        out: OutputConfig,
        legend: Legend,
        to_codes: CodeMapper,
        aoa: AoaModel | None = None,
        wants_proba: bool = False,
    ):
        self.x, self.frame, self.model, self.out = x, frame, model, out
        self.legend, self.to_codes, self.aoa = legend, to_codes, aoa
        self.wants_proba = wants_proba  # some output asked needs predict_proba

    @property
    def count(self) -> int:
        return int(self.x.shape[0])

    @cached_property
    def raw_proba(self) -> Any:
        return self.model.predict_proba(self.frame)

    @cached_property
    def proba(self) -> np.ndarray:
        """float64 (rows, classes) in the legend's code order."""
        return order_probabilities(self.model, self.raw_proba, self.legend)

    @cached_property
    def applicability(self) -> tuple[np.ndarray, np.ndarray]:
        """(DI float32, inside uint8) of the rows exactly as filled."""
        assert self.aoa is not None
        return self.aoa.predict(self.x)


class OutputKind:
    """One kind of output raster; a subclass per kind, one instance in the registry."""

    key: ClassVar[str]  # its key in the output section ("path": the main raster)
    what: ClassVar[str]  # what it holds, in a few words (check, docs)
    task: ClassVar[str | None] = None  # "classification" or "regression"; None: either
    needs: ClassVar[str | None] = None  # a key of NEED_BYTES

    def path(self, out: OutputConfig) -> Path | None:
        """Where ``out`` asks for this raster (None: not asked)."""
        value = getattr(out, self.key)
        return None if value is None else Path(value)

    def spec(self, out: OutputConfig, legend: Legend, aoa: AoaModel | None) -> RasterSpec:
        raise NotImplementedError

    def describe(self, spec: RasterSpec) -> str:
        """What the raster holds, for check's table."""
        return self.what

    def work_bytes(self, out: OutputConfig, classes: int, layers: int) -> int:
        """Working memory per pixel of a window, beyond what it shares (NEED_BYTES)."""
        return 8

    def compute(self, rows: Rows) -> np.ndarray:
        """The kept rows' values as the raster holds them: (rows,) or (bands, rows)."""
        raise NotImplementedError

    def tally(self, spec: RasterSpec) -> Tally | None:
        """What is counted in this raster as it is written (None: nothing)."""
        return None

    def style(self, spec: RasterSpec, tally: Tally | None, pixels: int) -> dict[str, Path]:
        """The style sidecars written beside the finished raster, by kind of file."""
        return {}

    def unsupported(self, abilities: Abilities) -> str | None:
        """Why this model cannot give this output; None when it can."""
        if self.task == "regression" and abilities.task != self.task:
            return f"{self.key} is for regressions; this model is a classifier ({abilities.name})"
        if self.task == "classification" and abilities.task != self.task:
            return (
                f"a regression gives no class probabilities; {self.key} is for classifiers "
                f"({abilities.name} is a regression)"
            )
        if self.needs == "predict_proba" and not abilities.predict_proba:
            return f"the model ({abilities.name}) has no predict_proba"
        return None
