"""The Python API the CLI wraps: ``run(config) -> report``.

prepare -> pass 1 (statistics) -> pass 2 (for each window: read, predict, write) -> report.
Every check that can fail on user input happens in ``prepare``, before any pixel work.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import rasterio
from rasterio.windows import Window

from .config import Config, load_config
from .engines.factory import make_executor
from .errors import OutputError
from .inputs.retrycounts import totals as remote_totals
from .inputs.windows import plan_windows
from .memory import TreeMemoryMonitor
from .outputs.atomic import write_json_atomic
from .outputs.writer import TILE, partial_path, remove_if_empty
from .passes.journal import Journal, TileTracker, fingerprint, journal_path
from .passes.pass1 import Statistics
from .passes.pass2 import predict_windows
from .passes.stats import LayerStats
from .prepare import Prepared, budget, prepare
from .report import build_report, masked_warning

log = logging.getLogger(__name__)


def run(
    config: str | os.PathLike | Mapping | Config,
    *,
    quiet: bool = True,
    progress: str | None = None,
    workers: int | None = None,
    recompute_stats: bool = False,
    overwrite: bool | None = None,
    resume: bool = False,
) -> dict:
    """Classify the stack described by ``config``; returns the report (also written as JSON).

    ``resume``: continue an interrupted run from its journal (same config, model and
    inputs), or start from the beginning when there is none. ``progress``: ``bar`` (tqdm),
    ``json`` (JSON lines on stderr, for programs) or ``none``; default ``none`` when
    ``quiet``, else ``bar``.
    """
    t_start = time.perf_counter()
    cfg = load_config(config)
    if overwrite is not None and cfg.output is not None:
        cfg = replace(cfg, output=replace(cfg.output, overwrite=overwrite))
    n_workers = workers or cfg.processing.workers or os.cpu_count() or 1
    shown = progress or ("none" if quiet else "bar")
    created: list[Path] = []  # output folders this run makes: removed if it fails, when empty
    try:
        return _run(cfg, created, n_workers, shown, recompute_stats, resume, t_start)
    except BaseException:
        remove_if_empty(created)
        raise


def _run(
    cfg: Config,
    created: list[Path],
    n_workers: int,
    shown: str,
    recompute_stats: bool,
    resume: bool,
    t_start: float,
) -> dict:
    retried = remote_totals().total  # the preparation's retries: this process's
    prep = prepare(cfg, created)
    out = prep.output_config
    max_pixels, cache_mb = budget(
        cfg, len(prep.layers), len(prep.legend.labels), n_workers, prep.task
    )
    # GDAL reads GDAL_CACHEMAX once, at its first block read; spawned workers inherit it.
    os.environ["GDAL_CACHEMAX"] = str(cache_mb)
    windows = plan_windows(prep.grid, [la.block_shape for la in prep.layers], max_pixels)
    engine, why = choose(prep, n_workers, windows)
    retried = remote_totals().total - retried
    if engine == "dask" or (n_workers > 1 and engine == "processes"):
        prep.model = None  # each worker loads its own: do not hold another copy here
    # Built before pass 1: worker processes start and load the model meanwhile.
    with (
        TreeMemoryMonitor() as memory,
        rasterio.Env(GDAL_CACHEMAX=cache_mb * 2**20),  # an int here is bytes, not MB
        make_executor(
            prep.model_config.path, n_workers, engine, prep.model, cfg.processing.scheduler
        ) as executor,
        spill_folder(out.path) as spill,
    ):
        statistics = Statistics(prep, executor, recompute_stats, shown, spill)
        t1 = time.perf_counter()
        prints = fingerprint(prep)
        journal = resumable(prep, prints) if resume else None
        resumed = journal is not None
        if journal is None:
            if not resume:
                warn_if_leftover(prep)
            stats = statistics.begin(windows)  # None: counted during pass 2
            journal = new_journal(prep, prints, stats, windows)
            source = statistics.mode
        elif journal.stats is None:  # interrupted while pass 2 counted them: count apart
            journal.stats = statistics.begin(None)
            source = statistics.mode
        else:
            source = "journal"
        t2 = time.perf_counter()
        summary, outputs = predict_windows(prep, journal, executor, statistics, shown, resumed)
        t3 = time.perf_counter()
        if source != "journal":  # pass 2 may have counted apart after its guide after all
            source = statistics.mode
        cache_state = "journal" if source == "journal" else statistics.state
    stats = journal.stats
    assert stats is not None  # pass 2 finished counting them when pass 1 left that to it
    if out.preview is not None:
        from .outputs.preview import write_preview

        labels = dict(zip(prep.legend.output_codes, prep.legend.labels, strict=True))
        write_preview(out.path, out.preview, labels, ramp=summary.ramp)
        outputs["preview"] = str(out.preview)

    report = build_report(
        prep,
        stats,
        summary,
        timing={
            "prepare_seconds": t1 - t_start,
            # fused: pass 1 is the guide and the finish; the counting is part of pass 2
            "pass1_seconds": (t2 - t1) + statistics.end_seconds,
            "pass2_seconds": (t3 - t2) - statistics.end_seconds,
            "total_seconds": time.perf_counter() - t_start,
        },
        extra={
            "stats_cache": cache_state,
            # fused or deferred (counted in pass 2), separate, cache or journal
            "pass1": source,
            "fill_share": round(statistics.fill_share, 6),  # the guide's: pixels to fill
            # every remote read's: the preparation's, and every item's on the workers
            "remote_retries": retried + executor.retries,
            "windows": len(journal.windows),
            "workers": n_workers,
            "engine": executor.name,
            "engine_choice": why,
            "memory_mb": cfg.processing.memory_mb,
            "gdal_cache_mb": cache_mb,
            "outputs": outputs,
            "cog": out.cog,
            "resumed": resumed,
            **executor.describe(),  # a distributed engine: its workers and their windows
        },
        tree_peak_mb=memory.peak_mb,
    )
    write_json_atomic(cfg.report_path, report)
    log.info("wrote %s and %s", out.path, cfg.report_path)
    warning = masked_warning(prep, stats, summary.masked)
    if warning:
        log.warning(warning)
    return report


@contextlib.contextmanager
def spill_folder(output: Path) -> Iterator[Path]:
    """A folder beside the output for what the workers keep on disk (the keys near each
    median, rows waiting for a fill); removed at the end, whatever happens. One that a killed
    run of the same output left is removed first (two runs of one output cannot coexist:
    their temporary outputs would be the same files)."""
    where, prefix = output.parent, f".statistics.{output.name}"
    for stale in where.glob(prefix + ".*"):
        if stale.is_dir() and stale.name.rsplit(".", 1)[0] == prefix:
            shutil.rmtree(stale, ignore_errors=True)
    try:
        folder = Path(tempfile.mkdtemp(prefix=prefix + ".", dir=where))
    except OSError as exc:
        raise OutputError(f"cannot make a spill folder in {where}: {exc}") from None
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def choose(prep: Prepared, workers: int, windows: Sequence[Window]) -> tuple[str, str]:
    """The engine, and why: ``auto`` probes whether the model's predict holds the GIL."""
    engine = prep.config.processing.engine
    if engine != "auto":
        return engine, "processing.engine"
    if workers <= 1:
        return "threads", "auto: one worker"
    from .engines.probe import choose_engine, known_native, probe_rows

    kind = known_native(prep.model)
    if kind is not None:
        return "threads", f"auto: {kind} predicts in native code that releases the GIL; threads"
    from .inputs.reader import StackReader
    from .passes.window import model_frame

    int_columns = tuple(
        prep.schema.dtypes.get(la.name, "").startswith(("int", "uint")) for la in prep.layers
    )
    with StackReader(prep.layers) as reader:
        rows = probe_rows(reader.read, windows)
    engine, why = choose_engine(
        prep.model.predict,
        lambda x: model_frame(x, prep.schema.features, int_columns, prep.schema.array_input),
        rows,
    )
    log.info("engine %s", why)
    return engine, why


def resumable(prep: Prepared, prints: dict[str, Any]) -> Journal | None:
    """The journal of an interrupted run of this config (``--resume``), if there is one."""
    path = journal_path(partial_path(prep.output_config.path))
    if not path.exists():
        # not a warning: a front-end may always ask to resume (QGIS does, when ticked)
        log.info("nothing to resume (no journal %s): starting from the beginning", path)
        return None
    journal = Journal.load(path, prep.grid, prints)
    log.info(
        "resuming: %d of %d output tiles were complete; %d window(s) to go",
        journal.tiles.complete,
        journal.tiles.done.size,
        len(journal.tiles.todo()),
    )
    return journal


def warn_if_leftover(prep: Prepared) -> None:
    """A run without --resume replaces what an interrupted run left: say so."""
    temp = partial_path(prep.output_config.path)
    if journal_path(temp).exists() or temp.exists():
        log.warning(
            "replacing the partial output of an interrupted run (%s); "
            "pass --resume to continue such a run instead",
            temp,
        )


def new_journal(
    prep: Prepared,
    prints: dict[str, Any],
    stats: dict[str, LayerStats] | None,
    windows: Sequence[Window],
) -> Journal:
    """A fresh journal for pass 2: nothing written yet."""
    path = journal_path(partial_path(prep.output_config.path))
    return Journal(path, prints, stats, windows, TileTracker(prep.grid, windows, TILE))
