"""Pass 2: predict the windows still to do into the temporary outputs, checkpoint the progress
into the resume journal as it goes, and move the outputs into place when complete.

When pass 1 is counted from pass 2's reads (``statistics.count``), every window's counts are
handed to it; its medians are finished after the last window, before any output takes its
name. Rows that waited for a median fill (deferred) are then filled, predicted and written
into their windows; on Dask, a window whose rows were on a worker that is gone is predicted
again whole.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from rasterio.windows import Window

from ..errors import Interrupted, RemoteReadError
from ..outputs.writer import OutputSet, OutputSummary
from ..progress import Progress
from .counting import Counted
from .executor import Executor, WorkerLost
from .journal import Journal
from .pass1 import Statistics, unknown_medians, window_item
from .stats import LayerStats
from .window import FillJob, PredictJob

if TYPE_CHECKING:
    from .prepared import Prepared

log = logging.getLogger(__name__)


def predict_job(prep: Prepared, medians: np.ndarray) -> PredictJob:
    """What every worker needs for pass 2 (small and picklable); counting and deferring are
    added for the windows that do them."""
    cfg = prep.config
    assert cfg.output is not None and cfg.model is not None
    return PredictJob(
        layers=tuple(prep.layers),
        int_columns=tuple(
            prep.schema.dtypes.get(layer.name, "").startswith(("int", "uint"))
            for layer in prep.layers
        ),
        medians=medians,
        threshold=cfg.nodata.threshold,
        legend=prep.legend,
        out=cfg.output,
        task=prep.task,
        model_path=cfg.model.path,
        array_input=prep.schema.array_input,
        aoa=prep.aoa,
    )


def medians_of(prep: Prepared, stats: dict[str, LayerStats] | None) -> np.ndarray:
    if stats is None:  # still being counted: no pixel may be filled before they are known
        return unknown_medians(len(prep.layers))
    return np.array([stats[la.name].median for la in prep.layers], dtype=np.float32)


def predict_windows(
    prep: Prepared,
    journal: Journal,
    executor: Executor,
    statistics: Statistics,
    progress: str = "bar",
    resumed: bool = False,
) -> tuple[OutputSummary, dict[str, str]]:
    """Returns what the writer counted (class pixels, statistics) and every file written by
    kind (the remote reads retried are the executor's count). An error before the outputs take
    their names leaves nothing under them."""
    cfg = prep.config
    assert cfg.output is not None
    job = predict_job(prep, medians_of(prep, journal.stats))
    tiles = journal.tiles
    todo = [window_item(i, w) for i, w in enumerate(journal.windows) if tiles.todo_window(w)]
    every = cfg.processing.checkpoint_seconds
    writer = OutputSet(prep.grid, job.specs, cfg.output, resumed)
    deferred: list[tuple[int, Any, str, int]] = []

    def checkpoint() -> None:  # the rasters on disk first, then the journal that vouches
        writer.checkpoint()
        journal.save()

    def discard() -> None:
        writer.abort()
        journal.remove()

    last = time.monotonic()

    def predict(run: PredictJob, items: list[tuple[int, Any]], bar: Progress) -> None:
        nonlocal last
        for (index, key), got in executor.run(run, items):
            window = Window(*key)
            if run.guide:
                statistics.take_guide(index, key, got)
            elif run.count is not None:
                statistics.accept(index, Counted(got.worker, got.counts), window=key)
            writer.write(window, got.result, tiles.parts(window))
            held = got.deferred is not None
            tiles.written(window, held=held)
            if held:
                deferred.append((index, key, got.worker, got.deferred))
            bar.update(key[2] * key[3])
            if time.monotonic() - last >= every:
                checkpoint()
                last = time.monotonic()

    try:
        checkpoint()  # a valid raster on disk from the start: resumable at once
        with Progress("pass2", sum(k[2] * k[3] for _, k in todo), progress) as bar:
            if journal.stats is None:  # counted here: the guide's windows first, then the rest
                defer = statistics.mode == "deferred"
                first = set(statistics.guide_items(journal.windows))
                guide = replace(job, count=statistics.guide_spec, guide=True, defer=defer)
                predict(guide, [t for t in todo if t[0] in first], bar)
                stats = statistics.after_guide(journal.windows, first)
                rest = [t for t in todo if t[0] not in first]
                if stats is not None:  # counted apart after all: the medians are known
                    journal.stats = stats
                    checkpoint()
                    predict(replace(job, medians=medians_of(prep, stats)), rest, bar)
                else:
                    predict(replace(job, count=statistics.spec, defer=defer), rest, bar)
                    journal.stats = statistics.end()  # exact medians, before outputs are named
                    checkpoint()
            else:
                predict(job, todo, bar)
        if deferred:
            fill_deferred(job, journal, executor, statistics, writer, deferred)
            checkpoint()
    except (KeyboardInterrupt, RemoteReadError) as exc:
        try:  # keep what is complete, for --resume
            checkpoint()
            writer.suspend()
        except BaseException:
            discard()
            raise
        if isinstance(exc, RemoteReadError):  # the server may answer later: resumable
            raise RemoteReadError(f"{exc}; run again with --resume to continue") from None
        raise Interrupted(journal.path) from exc
    except BaseException:
        discard()
        raise
    finally:
        executor.forget(job.token, statistics.folder)
    try:
        writer.commit()
    finally:
        journal.remove()
    main = "prediction" if prep.task == "regression" else "classes"
    outputs = {main: str(cfg.output.path)}
    outputs |= {kind: str(path) for kind, path in writer.style.items()}
    outputs |= {spec.key: str(spec.path) for spec in job.specs[1:]}
    return writer.summary(), outputs


def fill_deferred(
    job: PredictJob,
    journal: Journal,
    executor: Executor,
    statistics: Statistics,
    writer: OutputSet,
    deferred: list[tuple[int, Any, str, int]],
) -> None:
    """The rows that waited for a median fill, filled and predicted by the workers that kept
    them, written into their windows."""
    assert journal.stats is not None
    known = replace(job, medians=medians_of_job(job, journal.stats), count=None, defer=False)
    fill = FillJob(known, statistics.folder)
    pin = (lambda item: item[2]) if executor.pins else None
    left = list(deferred)
    while left:
        try:
            for (index, key, _, _), got in executor.run(fill, left, pin):
                window = Window(*key)
                writer.patch(window, got.pixels, got.values)
                journal.tiles.patched(window)
                left = [d for d in left if d[0] != index]
        except WorkerLost as lost:  # its rows are gone with it: predict those windows again
            gone = [d for d in left if d[2] == lost.worker]
            log.warning(
                "worker %s is gone with the rows it kept for a fill: predicting its %d "
                "window(s) again",
                lost.worker,
                len(gone),
            )
            refill = replace(known, refill=True)
            for (_, key), got in executor.run(refill, [(i, key) for i, key, _, _ in gone]):
                window = Window(*key)
                assert got.patch is not None
                writer.patch_where(window, got.result, got.patch)
                journal.tiles.patched(window)
            left = [d for d in left if d[2] != lost.worker]


def medians_of_job(job: PredictJob, stats: dict[str, LayerStats]) -> np.ndarray:
    return np.array([stats[layer.name].median for layer in job.layers], dtype=np.float32)
