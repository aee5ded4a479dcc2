"""The Python API the CLI wraps: ``run(config) -> report``.

Config -> Stack -> Stats (pass 1) -> for each window: read, classify, write (pass 2) -> Report.
Every check that can fail on user input happens before any pixel work.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from tqdm.auto import tqdm

from .atomic import write_json_atomic
from .classify import ClassifyJob
from .config import Config, OutputConfig, load_config
from .errors import InputError, Interrupted, ModelError, OutputError
from .executor import Executor, make_executor
from .journal import Journal, TileTracker, fingerprint, journal_path
from .memory import TreeMemoryMonitor
from .model import Legend, Schema, check_codes_fit, load_model, resolve_legend, resolve_schema
from .output import TILE, OutputSet, check_writable, partial_path, temporary_paths
from .preview import PREVIEW_HINT
from .report import build_report
from .stack import Grid, Layer, discover, open_layers, plan_windows
from .stats import LayerStats
from .statscache import StatsCache

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
    grid, all_layers = open_layers(named, cfg.nodata)
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


def run(
    config: str | os.PathLike | Mapping | Config,
    *,
    quiet: bool = True,
    workers: int | None = None,
    recompute_stats: bool = False,
    overwrite: bool | None = None,
    resume: bool = False,
) -> dict:
    """Classify the stack described by ``config``; returns the report (also written as JSON).

    ``resume``: continue an interrupted run from its journal (same config, model and
    inputs), or start from the beginning when there is none.
    """
    t_start = time.perf_counter()
    cfg = load_config(config)
    if overwrite is not None:
        cfg = replace(cfg, output=replace(cfg.output, overwrite=overwrite))
    n_workers = workers or cfg.processing.workers or os.cpu_count() or 1

    prep = prepare(cfg)
    max_pixels, cache_mb = budget(cfg, len(prep.layers), len(prep.legend.labels), n_workers)
    # GDAL reads GDAL_CACHEMAX once, at its first block read; spawned workers inherit it.
    os.environ["GDAL_CACHEMAX"] = str(cache_mb)
    engine = cfg.processing.engine
    if engine == "dask" or (n_workers > 1 and engine == "processes"):
        prep.model = None  # each worker loads its own: do not hold another copy here
    # Built before pass 1: worker processes start and load the model meanwhile.
    with (
        TreeMemoryMonitor() as memory,
        rasterio.Env(GDAL_CACHEMAX=cache_mb * 2**20),  # an int here is bytes, not MB
        make_executor(
            cfg.model.path, n_workers, engine, prep.model, cfg.processing.scheduler
        ) as executor,
    ):
        t1 = time.perf_counter()
        journal, cache_state, resumed = open_journal(
            prep, executor, n_workers, max_pixels, recompute_stats, resume, quiet
        )
        stats, windows = journal.stats, journal.windows
        t2 = time.perf_counter()
        counts, outputs = pass2(prep, journal, executor, quiet, resumed)
        t3 = time.perf_counter()
    if cfg.output.preview is not None:
        from .preview import write_preview

        write_preview(cfg.output.path, cfg.output.preview, dict(enumerate(prep.legend.labels)))
        outputs["preview"] = str(cfg.output.preview)

    report = build_report(
        prep,
        stats,
        counts,
        timing={
            "prepare_seconds": t1 - t_start,
            "pass1_seconds": t2 - t1,
            "pass2_seconds": t3 - t2,
            "total_seconds": time.perf_counter() - t_start,
        },
        extra={
            "stats_cache": cache_state,
            "windows": len(windows),
            "workers": n_workers,
            "engine": cfg.processing.engine if n_workers > 1 else "serial",
            "memory_mb": cfg.processing.memory_mb,
            "gdal_cache_mb": cache_mb,
            "outputs": outputs,
            "cog": cfg.output.cog,
            "resumed": resumed,
            **executor.describe(),  # a distributed engine: its workers and their windows
        },
        tree_peak_mb=memory.peak_mb,
    )
    write_json_atomic(cfg.report_path, report)
    log.info("wrote %s and %s", cfg.output.path, cfg.report_path)
    return report


def pass1(
    prep: Prepared, executor: Executor, workers: int, recompute: bool, quiet: bool
) -> tuple[dict[str, LayerStats], str]:
    """Per-layer statistics, from the cache where it holds them."""
    cache = (
        StatsCache(prep.config.processing.cache_dir) if prep.config.processing.stats_cache else None
    )
    found: dict[str, LayerStats] = {}
    if cache is not None and not recompute:
        for layer in prep.layers:
            hit = cache.get(layer)
            if hit is not None:
                found[layer.name] = hit
    todo = [layer for layer in prep.layers if layer.name not in found]
    if todo:
        with tqdm(
            total=prep.grid.pixels * len(todo),
            unit="px",
            unit_scale=True,
            desc="pass 1: statistics",
            disable=quiet,
        ) as bar:
            fresh = executor.compute_stats(todo, prep.grid, workers, progress=bar.update)
        if cache is not None:
            for layer in todo:
                cache.put(layer, fresh[layer.name])
        found.update(fresh)
    state = (
        "disabled"
        if cache is None
        else (
            "used" if not todo else "computed" if len(todo) == len(prep.layers) else "partly used"
        )
    )
    for layer in prep.layers:
        s = found[layer.name]
        log.info(
            "layer %s: median %s, min %s, max %s, %d valid, %d nodata",
            layer.name,
            s.median,
            s.min,
            s.max,
            s.valid_count,
            s.nodata_count,
        )
    return {layer.name: found[layer.name] for layer in prep.layers}, state


def open_journal(
    prep: Prepared,
    executor: Executor,
    workers: int,
    max_pixels: int,
    recompute: bool,
    resume: bool,
    quiet: bool,
) -> tuple[Journal, str, bool]:
    """An interrupted run's journal (``resume``), or pass 1 and a fresh plan."""
    temp = partial_path(prep.config.output.path)
    path = journal_path(temp)
    prints = fingerprint(prep.config, prep.layers)
    if resume and path.exists():
        journal = Journal.load(path, prep.grid, prints)
        log.info(
            "resuming: %d of %d output tiles were complete; %d window(s) to go",
            journal.tiles.complete,
            journal.tiles.done.size,
            len(journal.tiles.todo()),
        )
        return journal, "journal", True
    if resume:
        log.warning("nothing to resume (no journal %s): starting from the beginning", path)
    elif path.exists() or temp.exists():
        log.warning(
            "replacing the partial output of an interrupted run (%s); "
            "pass --resume to continue such a run instead",
            temp,
        )
    stats, state = pass1(prep, executor, workers, recompute, quiet)
    windows = plan_windows(prep.grid, [lay.block_shape for lay in prep.layers], max_pixels)
    return (
        Journal(path, prints, stats, windows, TileTracker(prep.grid, windows, TILE)),
        state,
        False,
    )


def pass2(
    prep: Prepared, journal: Journal, executor: Executor, quiet: bool, resumed: bool = False
) -> tuple[dict[str, int], dict[str, str]]:
    """Classify the windows still to do into the temporary outputs; checkpoint the progress
    into the journal as it goes; move the outputs into place when complete."""
    cfg = prep.config
    stats = journal.stats
    job = ClassifyJob(
        layers=tuple(prep.layers),
        int_columns=tuple(
            prep.schema.dtypes.get(layer.name, "").startswith(("int", "uint"))
            for layer in prep.layers
        ),
        medians=np.array([stats[layer.name].median for layer in prep.layers], dtype=np.float32),
        threshold=cfg.nodata.threshold,
        legend=prep.legend,
        out_dtype=cfg.output.dtype,
        out_nodata=cfg.output.nodata,
        model_path=cfg.model.path,
        probabilities=cfg.output.probabilities is not None,
        confidence=cfg.output.confidence is not None,
        proba_dtype=cfg.output.probabilities_dtype,
    )
    tiles = journal.tiles
    todo = tiles.todo()
    every = cfg.processing.checkpoint_seconds
    writer = OutputSet(prep.grid, cfg.output, prep.legend.labels, resume=resumed)

    def checkpoint() -> None:  # the rasters on disk first, then the journal that vouches
        writer.checkpoint()
        journal.save()

    def discard() -> None:
        writer.abort()
        journal.path.unlink(missing_ok=True)

    try:
        checkpoint()  # a valid raster on disk from the start: resumable at once
        last = time.monotonic()
        with tqdm(
            total=sum(int(w.width * w.height) for w in todo),
            unit="px",
            unit_scale=True,
            desc="pass 2: classify",
            disable=quiet,
        ) as bar:
            for window, result in executor.imap(job, todo):
                writer.write(window, result, tiles.parts(window))
                tiles.written(window)
                bar.update(int(window.width * window.height))
                if time.monotonic() - last >= every:
                    checkpoint()
                    last = time.monotonic()
    except KeyboardInterrupt as exc:
        try:  # keep what is complete, for --resume
            checkpoint()
            writer.suspend()
        except BaseException:
            discard()
            raise
        raise Interrupted(journal.path) from exc
    except BaseException:
        discard()
        raise
    try:
        writer.commit()
    finally:
        journal.path.unlink(missing_ok=True)
    outputs = {"classes": str(cfg.output.path)}
    outputs |= {kind: str(path) for kind, path in writer.style.items()}
    for key in ("probabilities", "confidence"):
        if getattr(cfg.output, key) is not None:
            outputs[key] = str(getattr(cfg.output, key))
    return writer.pixel_counts(), outputs
