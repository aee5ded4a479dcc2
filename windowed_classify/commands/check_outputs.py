"""``check``'s view of the outputs: the model's task, every raster the config asks for, and
whether the model can give it (class probabilities, a forest's members, quantiles, the AOA's
training table), without running the model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..aoa import parse_folds, read_training
from ..config import FLOAT_NODATA, Config, OutputConfig
from ..models.task import Abilities, looks_like_regressor

KINDS = {
    "path": "classes",
    "probabilities": "one probability band per class",
    "confidence": "highest class probability",
    "entropy": "normalised class entropy",
    "margin": "top minus second class probability",
    "spread": "standard deviation of the forest's members",
    "quantiles": "quantiles of a quantile forest",
    "di": "dissimilarity index",
    "aoa": "area of applicability (1 inside, 0 outside)",
}


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
    out: OutputConfig, abilities: Abilities | None, n_classes: int
) -> list[OutputLine]:
    """Every raster of ``out`` (dtype and nodata resolved), with the model's support."""
    lines = []
    proba = out.probabilities_dtype
    proba_nodata = "255" if proba == "uint8" else "nan"
    for key, path in out.named_rasters.items():
        kind = KINDS[key]
        bands, dtype, nodata = 1, proba, proba_nodata
        if key == "path":
            kind = "predicted values" if abilities and abilities.task == "regression" else kind
            dtype, nodata = str(out.dtype), f"{out.nodata:g}"
        elif key == "probabilities":
            bands = n_classes
        elif key in ("spread", "quantiles", "di"):
            dtype, nodata = "float32", f"{FLOAT_NODATA:g}"
            if key == "quantiles" and out.quantiles is not None:
                levels = out.quantiles["levels"]
                bands = len(levels)
                kind += " " + ", ".join(f"{q:g}" for q in levels)
        elif key == "aoa":
            dtype, nodata = "uint8", "255"
        reason = abilities.reason(key) if abilities is not None and key != "path" else None
        status = "ok" if reason is None else f"NOT SUPPORTED: {reason}"
        lines.append(OutputLine(key, str(path), kind, bands, dtype, nodata, status))
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
