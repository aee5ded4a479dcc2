"""``check``: the run's own preparation (``prepare.gather``) collecting every problem instead
of stopping at the first, plus what helps before a run: each layer's value range (exact from
the statistics cache, else from an overview or a sample of whole blocks: never the whole
stack) with warnings for values that look like undeclared nodata, and the estimated windows,
memory and output sizes. Nothing here decides what a run would do: ``prepare`` does."""

from __future__ import annotations

import logging
import math
import os
import shutil
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from ..config import Config, load_config
from ..config_values import is_remote
from ..engines.factory import executor_class
from ..inputs.grid import Grid, same_grid
from ..inputs.hints import nodata_hints
from ..inputs.layers import Band, Layer
from ..inputs.readahead import concurrently
from ..inputs.reader import StackReader, nodata_mask
from ..inputs.windows import layer_windows, plan_windows
from ..passes.pass1 import MAX_DEFERRED, Statistics
from ..passes.spill import keys_bytes, rows_bytes
from ..passes.statscache import StatsCache
from ..prepare import Plan, Problems, budget, gather
from .check_remote import Workers, remote_section
from .check_result import (
    LIBRARIES_MB,
    PROCESS_WORKER_MB,
    CheckResult,
    Estimate,
    LayerInfo,
    OutputLine,
    Spill,
)

log = logging.getLogger(__name__)

SAMPLE_PIXELS = 1 << 20  # pixels read per layer for its range, at most (plus one block)


def check(
    config: str | os.PathLike | Mapping | Config,
    *,
    workers: int | None = None,
    sample_pixels: int = SAMPLE_PIXELS,
    overwrite: bool | None = None,
) -> CheckResult:
    """Everything knowable before a run; config errors raise ConfigError like ``run``.
    ``overwrite``: as ``run(..., overwrite=)`` (None: the config's own output.overwrite)."""
    cfg = load_config(config)
    if overwrite is not None and cfg.output is not None:
        cfg = replace(cfg, output=replace(cfg.output, overwrite=overwrite))
    plan = gather(cfg, Problems(collect=True))
    result = CheckResult(plan)
    result.layers = _layer_infos(plan)
    result.outputs = [
        OutputLine(
            o.kind.key,
            str(o.spec.path),
            o.kind.describe(o.spec),
            o.spec.count,
            o.spec.dtype,
            f"{o.spec.nodata:g}",
            o.reason,
        )
        for o in plan.outputs
    ]
    grid = plan.grid
    infos = {info.name: info for info in result.layers}
    joint = JointNodata()
    if grid is not None:
        cache = StatsCache(cfg.processing.cache_dir) if cfg.processing.stats_cache else None
        ranges = [
            partial(_value_range, infos[layer.name], layer, grid, cache, sample_pixels, joint)
            for layer in plan.layers
        ]
        concurrently([r for r, la in zip(ranges, plan.layers, strict=True) if is_remote(la.path)])
        for r, layer in zip(ranges, plan.layers, strict=True):
            if not is_remote(layer.path):
                r()
        for layer in plan.layers:
            info = infos[layer.name]
            result.warnings.extend(f"layer '{info.name}': {w}" for w in info.warnings)
    complete = plan.wanted and len(plan.layers) == len(plan.wanted)
    n_workers = workers or cfg.processing.workers or os.cpu_count() or 1
    windows: list[Window] = []
    if grid is not None and complete and plan.outputs and not plan.missing:
        windows = _windows(plan, grid, n_workers)
        result.estimate = _estimate(plan, grid, n_workers, windows, result.outputs)
        kind = executor_class(cfg.processing.engine, n_workers)
        result.estimate.spill = _spill(plan, grid, windows, infos, joint, kind.pins)
        _space_warning(result.estimate, result.warnings)
    reads = result.estimate.spill.reads if result.estimate and result.estimate.spill else 1
    engine = result.estimate.engine if result.estimate else cfg.processing.engine
    result.remote = remote_section(plan, windows, Workers.of(engine, n_workers), reads)
    return result


def _layer_infos(plan: Plan) -> list[LayerInfo]:
    """One line per layer found, with whether a run can use it."""
    schema = plan.schema
    position = {f: i for i, f in enumerate(schema.features)} if schema else {}
    want = {b.name for b in plan.wanted}
    on_grid = {layer.name: layer for layer in plan.layers}
    ref = plan.grid
    infos = []
    for band in plan.found.bands:
        if band.name in want:
            why = "" if band.name in on_grid else "not on the grid"
        elif ref is not None and not same_grid(ref, band.grid):
            why = "unused, not on the grid"
        else:
            why = "unused"
        infos.append(_layer_info(band, on_grid.get(band.name), why, position))
    for bad in plan.found.unreadable:
        why = "cannot open" if bad.name in position or not schema else "unused, cannot open"
        infos.append(
            LayerInfo(
                bad.name, bad.source.path, 0, "-", (0, 0), None, (), position.get(bad.name), why
            )
        )
    return infos


def _layer_info(
    band: Band, layer: Layer | None, status: str, position: Mapping[str, int]
) -> LayerInfo:
    return LayerInfo(
        name=band.name,
        path=band.path,
        band=band.index if band.count > 1 else 0,
        dtype=band.dtype,
        block_shape=band.block_shape,
        file_nodata=band.file_nodata,
        nodata_values=layer.nodata_values if layer is not None else (),
        model_position=position.get(band.name),
        status=status,
        warped=layer.warp.resampling if layer is not None and layer.warp is not None else None,
    )


# ----------------------------------------------------------------------------- value ranges


CACHED = "exact (statistics cache)"


class JointNodata:
    """Per sampled pixel, how many layers are nodata there, for the layers sampled at the same
    pixels (one count per way of sampling: an overview's factor, a block shape): the share of
    pixels that need a median fill, as the run's guide finds it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[object, ...], np.ndarray] = {}
        self._layers: dict[tuple[object, ...], int] = {}

    def add(self, key: tuple[object, ...], invalid: np.ndarray) -> None:
        with self._lock:
            if key not in self._counts:
                self._counts[key] = np.zeros(invalid.shape, np.int32)
                self._layers[key] = 0
            self._counts[key] += invalid
            self._layers[key] += 1

    def fill_share(self, layers: int, threshold: int) -> float | None:
        """Unmasked pixels with a nodata value, as a share; None unless every one of the
        ``layers`` was sampled at the same pixels."""
        if len(self._counts) != 1 or next(iter(self._layers.values())) != layers:
            return None
        counts = next(iter(self._counts.values()))
        if not counts.size:
            return None
        return float(np.count_nonzero((counts >= 1) & (counts <= threshold)) / counts.size)


def _value_range(
    info: LayerInfo,
    layer: Layer,
    grid: Grid,
    cache: StatsCache | None,
    budget_px: int,
    joint: JointNodata | None = None,
) -> None:
    """min/max of the valid values (exact from the cache, else from an overview or a block
    sample) and the nodata hints (stored with the cached statistics, else from the sample);
    the sample's nodata pixels go to ``joint``."""
    cached = cache.get(layer) if cache is not None else None
    if cached is not None:
        info.min, info.max = cached.min, cached.max
        info.range_source = CACHED
        info.sampled_pixels = cached.valid_count + cached.nodata_count
        info.sampled_nodata = cached.nodata_count
        if cached.valid_count == 0:
            info.warnings.append("no valid pixel at all: the run will stop at its median")
        if cached.hints is not None:
            info.warnings += cached.hints
            return
    data, source = _sample(layer, grid, budget_px)
    invalid = nodata_mask(data, layer.nodata_values)
    if joint is not None:
        joint.add((source, layer.block_shape), invalid)
    valid = data[~invalid]
    if cached is None:
        info.range_source = source
        info.sampled_pixels = int(data.size)
        info.sampled_nodata = int(np.count_nonzero(invalid))
        if valid.size:
            info.min, info.max = float(valid.min()), float(valid.max())
        elif data.size:
            info.warnings.append(
                f"no valid value in the {source}: check its nodata values "
                "(a layer with no valid pixel at all stops the run)"
            )
    info.warnings += nodata_hints(valid, layer.dtype, layer.nodata_values)


def _sample(layer: Layer, grid: Grid, budget_px: int) -> tuple[np.ndarray, str]:
    """Values of one layer as a run reads them: an overview when the file has one, else
    whole blocks spread over the grid; and where they come from."""
    with StackReader([layer]) as reader:
        ds = reader.dataset(layer.name)  # a warped layer: its own file, as the run reads it
        # a warped layer is sampled through its warp, as the run reads it
        overviews = ds.overviews(layer.band) if layer.warp is None else []
        factor = _overview_factor(overviews, grid, budget_px)
        if factor is not None:
            shape = (math.ceil(grid.height / factor), math.ceil(grid.width / factor))
            data = ds.read(layer.band, out_shape=shape).astype(np.float32, copy=False).ravel()
            return data, f"overview 1/{factor}"
        windows = _spread_windows(grid, layer.block_shape, budget_px)
        parts = [reader.read(w)[0][0] for w in windows]
    data = np.concatenate(parts) if parts else np.empty(0, np.float32)
    share = 100 * data.size / max(grid.pixels, 1)
    return data, "all pixels" if data.size == grid.pixels else f"sample {share:.2g}%"


def _overview_factor(factors: Sequence[int], grid: Grid, budget_px: int) -> int | None:
    """The finest overview within the pixel budget (else the coarsest); None: no overview."""
    if not factors:
        return None
    fits = [f for f in sorted(factors) if (grid.height / f) * (grid.width / f) <= budget_px]
    return fits[0] if fits else max(factors)


def _spread_windows(grid: Grid, block: tuple[int, int], budget_px: int) -> list[Window]:
    """Whole blocks spread evenly over the grid's rows and columns, ``budget_px`` pixels or so.

    A decimated read (``out_shape``) of a file without overviews decodes nearly every block
    (measured: 0.45 s against 0.83 s for a full read of a 6000 x 6000 float32 LZW layer); a
    spread set of whole blocks costs the same whatever the raster's size.
    """
    windows = layer_windows(grid, block, min_pixels=max(1, min(1 << 14, budget_px // 8)))
    total = sum(int(w.width * w.height) for w in windows)
    if total <= budget_px:
        return windows
    n_cols = sum(1 for w in windows if w.row_off == windows[0].row_off)
    n_rows = len(windows) // n_cols
    n = max(1, int(budget_px // (total / len(windows))))
    golden = (math.sqrt(5) - 1) / 2
    picks = set()  # a Fibonacci lattice: even in rows, low-discrepancy in columns
    for i in range(n):
        row = int((i + 0.5) / n * n_rows)
        col = int(((i + 0.5) * golden % 1.0) * n_cols)
        picks.add(row * n_cols + col)
    return [windows[i] for i in sorted(picks)]


# ----------------------------------------------------------------------------- estimates


def _windows(plan: Plan, grid: Grid, n_workers: int) -> list[Window]:
    """The run's windows, as the run plans them."""
    n_classes = len(plan.legend.labels) if plan.legend is not None else 1
    layers = plan.layers
    max_pixels, _ = budget(plan.config, len(layers), n_classes, n_workers, plan.task)
    return plan_windows(grid, [la.block_shape for la in layers], max_pixels)


def _estimate(
    plan: Plan, grid: Grid, n_workers: int, windows: Sequence[Window], lines: list[OutputLine]
) -> Estimate:
    cfg = plan.config
    assert cfg.model is not None and cfg.output is not None
    shape = max(((int(w.height), int(w.width)) for w in windows), key=lambda s: s[0] * s[1])
    asked = cfg.processing.engine
    engine = asked if asked == "auto" and n_workers > 1 else executor_class(asked, n_workers).name
    model_mb = cfg.model.path.stat().st_size / 2**20 if cfg.model.path.is_file() else 0.0
    peak = LIBRARIES_MB + cfg.processing.memory_mb + model_mb
    if engine == "processes":
        peak += n_workers * (PROCESS_WORKER_MB + model_mb)
    outputs = {
        line.path: grid.pixels * line.bands * np.dtype(line.dtype).itemsize / 2**20
        for line in lines
    }
    return Estimate(
        windows=len(windows),
        window_shape=shape,
        workers=n_workers,
        engine=engine,
        memory_mb=cfg.processing.memory_mb,
        peak_mb=int(math.ceil(peak)),
        model_mb=model_mb,
        outputs_mb=outputs,
        free_mb=_free_mb(cfg.output.path.parent),
    )


def _free_mb(folder: Path) -> float | None:
    where = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if where is None:
        return None
    try:
        return shutil.disk_usage(where).free / 2**20
    except OSError:
        return None


def _spill(
    plan: Plan,
    grid: Grid,
    windows: Sequence[Window],
    infos: Mapping[str, LayerInfo],
    joint: JointNodata,
    on_workers: bool,
) -> Spill:
    """What the run will write beside the output while it runs (passes/spill.py's sizes):
    every counted layer's keys near its median, and, at a nodata threshold above 0, the rows
    that wait for a median fill - unless more than ``MAX_DEFERRED`` of the pixels need one (the
    run then reads the stack twice instead). ``on_workers``: the engine pins a window's work to
    the worker whose own disk holds its spill (Executor.pins)."""
    counted = [la for la in plan.layers if infos[la.name].range_source != CACHED]
    if not counted:
        return Spill("cache", 0, 0.0, 0.0, None, "", on_workers)
    guide = Statistics.guide_items(windows)
    guide_share = sum(int(windows[i].width * windows[i].height) for i in guide) / grid.pixels
    keys = 0
    for layer in counted:
        info = infos[layer.name]
        nodata = info.sampled_nodata / info.sampled_pixels if info.sampled_pixels else 0.0
        keys += keys_bytes(int(grid.pixels * (1 - nodata)), guide_share)
    threshold = plan.config.nodata.threshold
    if threshold == 0:  # no pixel is filled: pass 2 counts them in its own read
        return Spill("fused", len(counted), keys / 2**20, 0.0, None, "", on_workers)
    share = joint.fill_share(len(plan.layers), threshold)
    source = "sample"
    if share is None:  # not known: as many as the run would defer
        share, source = MAX_DEFERRED, "at most"
    if share > MAX_DEFERRED:
        return Spill("separate", len(counted), keys / 2**20, 0.0, share, source, on_workers)
    rows = rows_bytes(int(share * grid.pixels), len(plan.layers))
    return Spill("deferred", len(counted), keys / 2**20, rows / 2**20, share, source, on_workers)


def _space_warning(est: Estimate, warnings: list[str]) -> None:
    need = sum(est.outputs_mb.values())
    if est.free_mb is not None and need > est.free_mb:
        warnings.append(
            f"the outputs take up to {need:,.0f} MB uncompressed and only {est.free_mb:,.0f} MB "
            "are free where they go (compression usually makes them much smaller)"
        )
    spill = est.spill
    if spill is None or not spill.total_mb or spill.on_workers:
        return
    if est.free_mb is not None and need + spill.total_mb > est.free_mb:
        warnings.append(
            f"the run writes about {spill.total_mb:,.0f} MB beside the output while it runs "
            f"(statistics spill {spill.statistics_mb:,.0f} MB, rows waiting for a fill "
            f"{spill.rows_mb:,.0f} MB; removed at the end), besides the outputs' {need:,.0f} "
            f"MB, and only {est.free_mb:,.0f} MB are free there"
        )
