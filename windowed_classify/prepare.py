"""Everything known before a pixel is read, shared by ``run``, ``check`` and ``sample``:
the layers, the model, its features and legend, the output checks and the memory budget."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Config, OutputConfig
from .errors import InputError, ModelError, OutputError
from .inputs.discover import discover
from .inputs.grid import Grid
from .inputs.layers import Layer, open_layers
from .models.legend import Legend, check_codes_fit, resolve_legend
from .models.load import load_model
from .models.schema import Schema, resolve_schema
from .outputs.preview import PREVIEW_HINT
from .outputs.writer import check_writable, temporary_paths

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """Everything known before any pixel is read: the run can start."""

    config: Config
    grid: Grid
    layers: list[Layer]  # the model's layers, in the model's order
    ignored: list[str]
    schema: Schema
    legend: Legend
    model: Any


def prepare(cfg: Config) -> Prepared:
    """Discover, load the model, match features to layers, check the grid and the codes."""
    check_writable(cfg.output)
    check_preview_extra(cfg.output)
    named = discover_layers(cfg)
    model = load_model(cfg.model.path)
    schema = resolve_schema(model, cfg.model)
    legend = resolve_legend(model, cfg.model)
    check_codes_fit(legend, cfg.output.dtype, cfg.output.nodata)
    check_proba(model, cfg.output)

    require_features(named, schema, cfg)
    ignored = [name for name, _ in named if name not in set(schema.features)]
    if ignored:
        log.warning(
            "ignoring %d layer(s) the model does not use: %s", len(ignored), ", ".join(ignored)
        )
    # Every raster shares the first one's grid; the output takes that grid.
    grid, all_layers = open_layers(named, cfg.nodata, cfg.rasters)
    by_name = {layer.name: layer for layer in all_layers}
    layers = [by_name[f] for f in schema.features]
    return Prepared(cfg, grid, layers, ignored, schema, legend, model)


def discover_layers(cfg: Config) -> list[tuple[str, Path | str]]:
    """Every layer ``rasters`` names, never this run's own outputs (or their temporary names)."""
    ours = [p for path in cfg.output.rasters for p in (path, *temporary_paths(path))]
    return discover(cfg.rasters, exclude=ours)


def missing_features(named: Sequence[tuple[str, Path | str]], schema: Schema) -> list[str]:
    found = {name for name, _ in named}
    return [f for f in schema.features if f not in found]


def require_features(named: Sequence[tuple[str, Path | str]], schema: Schema, cfg: Config) -> None:
    """Every feature the model expects has a layer; else an error naming all the missing."""
    missing = missing_features(named, schema)
    if missing:
        raise InputError(
            f"{len(missing)} feature(s) the model expects ({schema.source}) have no raster "
            + (f"under {cfg.rasters.folder}: " if cfg.rasters.folder else "in rasters.files: ")
            + ", ".join(missing)
        )


def check_proba(model: Any, out: OutputConfig) -> None:
    """Probability outputs need predict_proba: say so before any work."""
    asked = [k for k in ("probabilities", "confidence") if getattr(out, k) is not None]
    if asked and not callable(getattr(model, "predict_proba", None)):
        raise ModelError(
            f"config key 'output.{asked[0]}': the model ({type(model).__name__}) has no "
            "predict_proba, so it cannot give class probabilities; remove "
            + " and ".join(f"output.{k}" for k in asked)
        )


def check_preview_extra(out: OutputConfig) -> None:
    if out.preview is not None and importlib.util.find_spec("matplotlib") is None:
        raise OutputError(f"config key 'output.preview': {PREVIEW_HINT}")


def budget(cfg: Config, n_layers: int, n_classes: int, workers: int) -> tuple[int, int]:
    """(max pixels per window, GDAL cache MB per process) from processing.memory_mb.

    A window costs per pixel: the float32 stack, its nodata mask, the filled copy and the
    model's frame (about 14 bytes a layer), plus the model's per-row work (class scores).
    60% of the budget goes to windows (shared by the workers), 20% to GDAL's block caches.
    """
    total = cfg.processing.memory_mb * 2**20
    per_pixel = 14 * n_layers + 16 * n_classes + 64
    if cfg.output.probabilities is not None or cfg.output.confidence is not None:
        per_pixel += 24 * n_classes  # predict_proba twice over (raw, legend order) and encoded
    max_pixels = int(0.6 * total / max(workers, 1) / per_pixel)
    cache_mb = max(8, int(0.2 * cfg.processing.memory_mb / (workers + 1)))
    return max_pixels, cache_mb
