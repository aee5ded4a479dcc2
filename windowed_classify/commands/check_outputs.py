"""``check``'s view of the outputs: the model's task, every raster the config asks for and
whether the model can give it (each output kind says), and the AOA's training table, without
running the model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..aoa import parse_folds, read_training
from ..config import Config, OutputConfig
from ..models.legend import Legend
from ..models.task import Abilities, looks_like_regressor
from ..outputs.kinds import asked


@dataclass
class OutputLine:
    """One raster a run would write, and whether it can."""

    key: str
    path: str
    kind: str
    bands: int
    dtype: str
    nodata: str
    status: str  # "ok", or "NOT SUPPORTED: why"


def describe_task(model: Any, cfg: Config, task: str) -> str:
    """How the task was decided, for check's text."""
    assert cfg.model is not None
    name = type(model).__name__ if model is not None else "the model"
    if cfg.model.task != "auto":
        return f"{task} (model.task)"
    kind = "a regressor" if model is not None and looks_like_regressor(model) else "not a regressor"
    return f"{task} (auto: {name} is {kind})"


def output_lines(
    out: OutputConfig, task: str, abilities: Abilities | None, n_classes: int
) -> list[OutputLine]:
    """Every raster of ``out`` (dtype and nodata resolved), with the model's support."""
    legend = Legend(tuple(range(n_classes)), "")
    lines = []
    for kind in asked(out, task):
        spec = kind.spec(out, legend, None)
        what = kind.describe(spec)
        reason = abilities and kind.unsupported(abilities)
        status = "ok" if not reason else f"NOT SUPPORTED: {reason}"
        nodata = f"{spec.nodata:g}"
        lines.append(
            OutputLine(spec.key, str(spec.path), what, spec.count, spec.dtype, nodata, status)
        )
    return lines


def output_sizes(lines: list[OutputLine], pixels: int) -> dict[str, float]:
    """Each raster's uncompressed size in MB."""
    return {
        line.path: pixels * line.bands * np.dtype(line.dtype).itemsize / 2**20 for line in lines
    }


def training_note(cfg: Config, features: tuple[str, ...]) -> str:
    """The AOA's training table as a run would read it: a UserError when it cannot."""
    assert cfg.aoa is not None
    kind, arg = parse_folds(cfg.aoa.folds)
    table = read_training(cfg.aoa.training, features, fold_column=arg if kind == "column" else None)
    try:
        shown = str(cfg.aoa.training.relative_to(cfg.source.parent)) if cfg.source else None
    except ValueError:
        shown = None
    folds = {
        "none": "no folds",
        "column": f"folds from column {arg!r}",
        "random": f"{arg} random folds",
    }[kind]
    return (
        f"{shown or cfg.aoa.training}: {len(table.rows)} usable training row(s)"
        + (f", {table.dropped} dropped" if table.dropped else "")
        + f"; {folds}"
    )


def problems_of(lines: list[OutputLine]) -> list[str]:
    """One problem per unsupported output, in the run's words."""
    prefix = "NOT SUPPORTED: "
    return [
        f"config key 'output.{ln.key}': {ln.status[len(prefix) :]}"
        for ln in lines
        if ln.status.startswith(prefix)
    ]
