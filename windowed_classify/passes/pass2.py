"""Pass 2: predict the windows still to do into the temporary outputs, checkpoint the progress
into the resume journal as it goes, and move the outputs into place when complete."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..errors import Interrupted, RemoteReadError
from ..outputs.writer import OutputSet, OutputSummary
from ..progress import Progress
from .executor import Executor, Observer
from .journal import Journal
from .pass1 import unknown_medians
from .window import PredictJob

if TYPE_CHECKING:
    from .prepared import Prepared


def predict_job(prep: Prepared, medians: np.ndarray) -> PredictJob:
    """What every worker needs for pass 2 (small and picklable)."""
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


def predict_windows(
    prep: Prepared,
    journal: Journal,
    executor: Executor,
    progress: str = "bar",
    resumed: bool = False,
    observe: Observer | None = None,
    before_commit: Callable[[], object] | None = None,
) -> tuple[OutputSummary, dict[str, str]]:
    """Returns what the writer counted (class pixels, statistics) and every file written,
    by kind. ``observe`` gets every window's values as read (pass 1 counted from pass 2's
    reads); ``before_commit`` runs after the last window, before any output takes its name
    (an error there leaves nothing under the outputs' names)."""
    cfg = prep.config
    stats = journal.stats
    if stats is None:  # counted during this pass: nodata.threshold 0 fills no pixel
        medians = unknown_medians(len(prep.layers))
    else:
        medians = np.array([stats[la.name].median for la in prep.layers], dtype=np.float32)
    job = predict_job(prep, medians)
    tiles = journal.tiles
    todo = tiles.todo()
    every = cfg.processing.checkpoint_seconds
    writer = OutputSet(prep.grid, job.specs, cfg.output, resumed)

    def checkpoint() -> None:  # the rasters on disk first, then the journal that vouches
        writer.checkpoint()
        journal.save()

    def discard() -> None:
        writer.abort()
        journal.path.unlink(missing_ok=True)

    try:
        checkpoint()  # a valid raster on disk from the start: resumable at once
        last = time.monotonic()
        with Progress("pass2", sum(int(w.width * w.height) for w in todo), progress) as bar:
            for window, result in executor.imap(job, todo, observe):
                writer.write(window, result, tiles.parts(window))
                tiles.written(window)
                bar.update(int(window.width * window.height))
                if time.monotonic() - last >= every:
                    checkpoint()
                    last = time.monotonic()
        if before_commit is not None:  # e.g. the statistics counted here: they can still fail
            before_commit()
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
    try:
        writer.commit()
    finally:
        journal.path.unlink(missing_ok=True)
    main = "prediction" if prep.task == "regression" else "classes"
    outputs = {main: str(cfg.output.path)}
    outputs |= {kind: str(path) for kind, path in writer.style.items()}
    outputs |= {spec.key: str(spec.path) for spec in job.specs[1:]}
    return writer.summary(), outputs
