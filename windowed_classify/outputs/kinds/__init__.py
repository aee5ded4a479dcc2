"""The registry of output kinds: every raster a run can write, in the order they are written
and listed. Adding an output: a module here with its ``OutputKind`` and a line below (and
its key in ``config.OutputConfig``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...config import OutputConfig
from . import (
    aoa,
    classes,
    confidence,
    di,
    entropy,
    margin,
    prediction,
    probabilities,
    quantiles,
    spread,
)
from .base import NEED_BYTES, OutputKind, RasterSpec, Rows

if TYPE_CHECKING:
    from ...aoa import AoaModel
    from ...models.legend import Legend

KINDS: tuple[OutputKind, ...] = (
    classes.KIND,
    prediction.KIND,
    probabilities.KIND,
    confidence.KIND,
    entropy.KIND,
    margin.KIND,
    spread.KIND,
    quantiles.KIND,
    di.KIND,
    aoa.KIND,
)

__all__ = ["KINDS", "OutputKind", "RasterSpec", "Rows", "asked", "raster_specs", "work_bytes"]


def asked(out: OutputConfig, task: str) -> list[OutputKind]:
    """The kinds ``out`` asks for, the main raster (classes or values) first. An optional
    kind of the other task is listed too: it is what ``check`` and ``prepare`` refuse."""
    main = [k for k in KINDS if k.key == "path" and k.task == task]
    return main + [k for k in KINDS if k.key != "path" and k.path(out) is not None]


def raster_specs(
    out: OutputConfig, task: str, legend: Legend, aoa: AoaModel | None = None
) -> list[RasterSpec]:
    """Every raster of a run (``out`` resolved for ``task``), the main raster first."""
    return [kind.spec(out, legend, aoa) for kind in asked(out, task)]


def work_bytes(out: OutputConfig | None, task: str, classes: int, layers: int) -> int:
    """Working memory per pixel of a window for the outputs asked (shared needs once)."""
    if out is None:
        return 0
    kinds = asked(out, task)
    needs = {k.needs for k in kinds if k.needs is not None}
    own = sum(k.work_bytes(out, classes, layers) for k in kinds)
    return own + sum(NEED_BYTES[n](classes, layers) for n in needs)
