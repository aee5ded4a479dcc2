"""Everything known before a pixel is read, shared by ``run``, ``check`` and ``sample``:
the layers, the model, its task, features and legend, the output checks, the area of
applicability's training rows and the memory budget."""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .aoa import AoaModel, build_aoa
from .config import Config, OutputConfig
from .errors import InputError, ModelError, OutputError
from .inputs.discover import discover
from .inputs.grid import Grid, same_grid
from .inputs.layers import Band, Layer, Unreadable, list_bands, open_layers
from .models.legend import Legend, check_codes_fit, resolve_legend
from .models.load import load_model
from .models.schema import Schema, resolve_schema, trust_warning
from .models.task import Abilities, feature_importances, resolve_task
from .outputs.kinds import asked, work_bytes
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
    legend: Legend  # empty for a regression
    model: Any
    task: str = "classification"  # or "regression"
    aoa: AoaModel | None = None  # when output.di or output.aoa is asked


REGRESSION_LEGEND = Legend((), "a regression (no classes)")


def prepare(cfg: Config, created: list[Path] | None = None) -> Prepared:
    """Discover, load the model, match features to layers, check the grid and the codes.

    ``created`` collects the output folders made here (a failed run removes them if empty).
    """
    cfg.need("model", "output")
    check_writable(cfg.output, created)
    check_preview_extra(cfg.output)
    found = find_layers(cfg)
    model = load_model(cfg.model.path)
    task = resolve_task(model, cfg.model)
    cfg = replace(cfg, output=cfg.output.for_task(task))
    schema = resolve_schema(model, cfg.model)
    legend = model_legend(model, cfg, task)
    check_outputs(model, task, cfg.output)

    if schema.trusted:
        log.warning(trust_warning(schema))
    bands = model_bands(found, schema, cfg)
    # The model's layers share the reference grid (the output's); other layers never matter.
    grid, layers = open_layers(bands, cfg.nodata, cfg.rasters)
    ignored = unused_layers(found, schema, grid)
    if ignored:
        log.warning(
            "ignoring %d layer(s) the model does not use: %s",
            len(ignored),
            ", ".join(f"{name} ({why})" if why else name for name, why in ignored.items()),
        )
    aoa = applicability(cfg, model, schema)
    return Prepared(cfg, grid, layers, list(ignored), schema, legend, model, task, aoa)


def model_legend(model: Any, cfg: Config, task: str) -> Legend:
    """The classes and their codes (checked to fit the output); none for a regression."""
    assert cfg.output is not None and cfg.model is not None
    if task == "regression":
        return REGRESSION_LEGEND
    legend = resolve_legend(model, cfg.model, cfg.output.codes)
    check_codes_fit(legend, cfg.output.dtype, int(cfg.output.nodata))
    return legend


def check_outputs(model: Any, task: str, out: OutputConfig) -> None:
    """Every output asked for must be one the model can give: say so before any work."""
    abilities = Abilities.of(model, task)
    problems = [(k.key, r) for k in asked(out, task) if (r := k.unsupported(abilities)) is not None]
    if problems:
        key, reason = problems[0]
        others = [f"output.{k}" for k, _ in problems[1:]]
        raise ModelError(
            f"config key 'output.{key}': {reason}"
            + (f" (also: {', '.join(others)})" if others else "")
        )


def applicability(cfg: Config, model: Any, schema: Schema) -> AoaModel | None:
    """The AOA model from the training rows, when output.di or output.aoa asks for it."""
    assert cfg.output is not None
    if cfg.output.di is None and cfg.output.aoa is None:
        if cfg.aoa is not None:
            log.warning("the aoa section is used only with output.di or output.aoa: ignored")
        return None
    assert cfg.aoa is not None  # the config's own check
    return build_aoa(
        cfg.aoa.training,
        schema.features,
        weights=cfg.aoa.weights,
        importances=feature_importances(model, len(schema.features)),
        folds=cfg.aoa.folds,
        seed=cfg.aoa.seed,
    )


@dataclass
class Found:
    """Every layer of the inputs, in discovery order, and the files that cannot be opened."""

    bands: list[Band]
    unreadable: list[Unreadable]

    @property
    def names(self) -> list[str]:
        """Layer names; an unreadable file stands for one layer named by its stem."""
        return [b.name for b in self.bands] + [u.name for u in self.unreadable]


def find_layers(cfg: Config) -> Found:
    """Every layer ``rasters`` names (every band of every file), never this run's own outputs
    (or their temporary names)."""
    written = cfg.output.rasters if cfg.output is not None else []
    ours = [p for path in written for p in (path, *temporary_paths(path))]
    return Found(*list_bands(discover(cfg.rasters, exclude=ours)))


def missing_features(found: Found, schema: Schema) -> list[str]:
    names = set(found.names)
    return [f for f in schema.features if f not in names]


def require_features(found: Found, schema: Schema, cfg: Config) -> None:
    """Every feature the model expects has a layer; else an error naming all the missing.
    A feature whose file cannot be opened is that file's error."""
    missing = missing_features(found, schema)
    if missing:
        raise InputError(
            f"{len(missing)} feature(s) the model expects ({schema.source}) have no raster "
            + (f"under {cfg.rasters.folder}: " if cfg.rasters.folder else "in rasters.files: ")
            + ", ".join(missing)
        )
    for bad in found.unreadable:
        if bad.name in schema.features:
            raise InputError(bad.reason)


def model_bands(found: Found, schema: Schema, cfg: Config) -> list[Band]:
    """The bands of the model's features, in the model's order."""
    require_features(found, schema, cfg)
    by_name = {b.name: b for b in found.bands}
    return [by_name[f] for f in schema.features]


def unused_layers(found: Found, schema: Schema, grid: Grid) -> dict[str, str]:
    """Layers the model does not use -> why they could not have been used ("" if they could)."""
    used = set(schema.features)
    out = {}
    for band in found.bands:
        if band.name not in used:
            out[band.name] = "" if same_grid(grid, band.grid) else "not on the model's grid"
    for bad in found.unreadable:
        if bad.name not in used:
            out[bad.name] = f"cannot be opened: {bad.source.path}"
    return out


def check_preview_extra(out: OutputConfig) -> None:
    if out.preview is not None and importlib.util.find_spec("matplotlib") is None:
        raise OutputError(f"config key 'output.preview': {PREVIEW_HINT}")


def budget(
    cfg: Config, n_layers: int, n_classes: int, workers: int, task: str = "classification"
) -> tuple[int, int]:
    """(max pixels per window, GDAL cache MB per process) from processing.memory_mb.

    A window costs per pixel: the float32 stack, its nodata mask, the filled copy and the
    model's frame (about 14 bytes a layer), plus what each output asked for holds
    (each output kind's work bytes, outputs/kinds). 60% of the
    budget goes to windows (shared by the workers), 20% to GDAL's block caches.
    """
    total = cfg.processing.memory_mb * 2**20
    per_pixel = 14 * n_layers + 48 + work_bytes(cfg.output, task, n_classes, n_layers)
    max_pixels = int(0.6 * total / max(workers, 1) / per_pixel)
    cache_mb = max(8, int(0.2 * cfg.processing.memory_mb / (workers + 1)))
    return max_pixels, cache_mb
