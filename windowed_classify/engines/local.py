"""The local engines: serial (in this thread), threads (one model), processes (one each).

Threads share one model and each has its own open rasters: GDAL reads and the predict of
scikit-learn trees, LightGBM and onnxruntime release the GIL. Processes load the model once
each, for models whose predict holds it.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import pickle
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from rasterio.windows import Window

from ..inputs.windows import window_key
from ..models.load import load_model
from ..outputs.results import WindowResult
from ..passes.executor import Executor, Observer, Result, bounded, taker
from ..passes.stats import Counts, Task, count_task, serial
from ..passes.window import PredictJob, Predictors, WindowPredictor


class SerialExecutor(Executor):
    """In this process and thread; the simplest and the reference for the others."""

    stats_layers = 1  # one task at a time: one layer's counters at a time

    def __init__(self, model: Any):
        self.predictors = Predictors(model)

    observes = True

    def imap(
        self, job: PredictJob, windows: Iterable[Window], observe: Observer | None = None
    ) -> Iterator[Result]:
        predictor = self.predictors.get(job)
        for window in windows:
            yield window, predictor(window, observe)

    def count(self, take: Callable[[], Task | None]) -> Iterator[tuple[Task, Counts]]:
        return serial(take)

    def close(self) -> None:
        self.predictors.close()


# --------------------------------------------------------------------- process pool workers

_WORKER: Predictors | None = None


def _exit_with_parent(parent: int, interval: float = 1.0) -> None:
    """A worker never outlives the main process (killed with SIGKILL, say)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _init_worker(model_path: Path) -> None:
    global _WORKER
    # Ctrl-C reaches the whole process group: the main process alone decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent(os.getppid())
    _WORKER = Predictors(load_model(model_path))  # the model is loaded here, once


_JOBS: dict[str, PredictJob] = {}  # token -> the job, read once per worker from its file


def _predict_in_worker(job: JobRef, window: tuple[int, int, int, int]) -> WindowResult:
    assert _WORKER is not None
    token, path = job
    if token not in _JOBS:
        _JOBS.clear()  # one job at a time: the previous run's is done
        _JOBS[token] = pickle.loads(Path(path).read_bytes())
    return _WORKER.get(_JOBS[token])(Window(*window))


JobRef = tuple[str, str]  # (the job's token, the file its pickle is in)


@contextlib.contextmanager
def job_file(job: PredictJob) -> Iterator[JobRef]:
    """The job pickled once into a temporary file: each worker process reads it once, instead
    of every task carrying it (an AOA model carries its training rows, megabytes)."""
    fd, path = tempfile.mkstemp(prefix="windowed_classify-job-", suffix=".pickle")
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(job, f, protocol=pickle.HIGHEST_PROTOCOL)
        yield job.token, path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _first_done(pending: Collection[cf.Future]) -> set[cf.Future]:
    return cf.wait(pending, return_when=cf.FIRST_COMPLETED).done


class _BoundedPool(Executor):
    """Keeps at most ``inflight`` windows submitted; yields each result as it completes.
    Pass 1 counts in ``stats_pool``: threads of this process (GDAL reads release the GIL)."""

    pool: cf.Executor
    stats_pool: cf.ThreadPoolExecutor
    inflight: int

    def _submit(
        self, job: PredictJob, window: Window, observe: Observer | None = None
    ) -> cf.Future:
        raise NotImplementedError

    def imap(
        self, job: PredictJob, windows: Iterable[Window], observe: Observer | None = None
    ) -> Iterator[Result]:
        if observe is not None and not self.observes:
            raise ValueError(f"{type(self).__name__} cannot observe windows")
        submit = lambda window: self._submit(job, window, observe)  # noqa: E731
        for window, future in bounded(submit, taker(windows), self.inflight, _first_done):
            yield window, future.result()

    def count(self, take: Callable[[], Task | None]) -> Iterator[tuple[Task, Counts]]:
        submit = lambda task: self.stats_pool.submit(count_task, task)  # noqa: E731
        for task, future in bounded(submit, take, self.inflight, _first_done):
            yield task, future.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self.stats_pool is not self.pool:
            self.stats_pool.shutdown(wait=True, cancel_futures=True)


class ProcessExecutor(_BoundedPool):
    """Worker processes read and predict; only codes (1 byte a pixel) come back."""

    def __init__(self, model_path: Path, workers: int):
        self.pool = cf.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(model_path,),
        )
        self.inflight = 2 * workers
        self.stats_pool = cf.ThreadPoolExecutor(max_workers=workers)
        self.stats_layers = workers + 1
        self.workers = workers
        # Start every worker now, so imports and model loading overlap pass 1.
        for _ in range(workers):
            self.pool.submit(int)

    def imap(
        self, job: PredictJob, windows: Iterable[Window], observe: Observer | None = None
    ) -> Iterator[Result]:
        with job_file(job) as self._job_ref:
            yield from super().imap(job, windows, observe)

    def _submit(
        self, job: PredictJob, window: Window, observe: Observer | None = None
    ) -> cf.Future:
        return self.pool.submit(_predict_in_worker, self._job_ref, window_key(window))


class ThreadExecutor(_BoundedPool):
    """Threads share one model; each thread has its own open rasters."""

    def __init__(self, model: Any, workers: int):
        self.model = model
        self.local = threading.local()
        self.all: list[Predictors] = []
        self.lock = threading.Lock()
        self.pool = self.stats_pool = cf.ThreadPoolExecutor(max_workers=workers)
        self.inflight = 2 * workers
        self.stats_layers = workers + 1
        self.workers = workers

    def _predictor(self, job: PredictJob) -> WindowPredictor:
        predictors = getattr(self.local, "predictors", None)
        if predictors is None:
            predictors = self.local.predictors = Predictors(self.model)
            with self.lock:
                self.all.append(predictors)
        return predictors.get(job)

    observes = True

    def _submit(
        self, job: PredictJob, window: Window, observe: Observer | None = None
    ) -> cf.Future:
        return self.pool.submit(lambda: self._predictor(job)(window, observe))

    def close(self) -> None:
        super().close()
        for predictors in self.all:
            predictors.close()
