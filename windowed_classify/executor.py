"""Executors run a ``ClassifyJob`` over windows and yield (window, codes) in any order.

The pipeline only sees ``Executor.imap(job, windows)``; an engine (serial, thread pool,
process pool, and later Dask) plugs in here without touching it. An executor is built from
the model's path before pass 1, so worker processes start and load the model (once each)
while the statistics are computed. The job (layers, medians, legend: a few KB) travels with
each task; the model never does. In-flight windows are bounded so memory stays flat.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from .classify import ClassifyJob, WindowClassifier
from .model import load_model
from .stack import Grid, Layer
from .stats import LayerStats, compute_stats

Result = tuple[Window, np.ndarray]


class Executor(ABC):
    """Pass 1 (statistics) and pass 2 (classify windows; results come back in any order)."""

    @abstractmethod
    def imap(self, job: ClassifyJob, windows: Iterable[Window]) -> Iterator[Result]: ...

    def compute_stats(
        self, layers: Sequence[Layer], grid: Grid, workers: int, progress: Callable[[int], object]
    ) -> dict[str, LayerStats]:
        """Exact per-layer statistics; local engines count in this process's threads."""
        return compute_stats(layers, grid, workers, progress=progress)

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def describe(self) -> dict[str, Any]:
        """Fields the engine adds to the run report (a distributed engine names its workers)."""
        return {}

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Classifiers:
    """One WindowClassifier per job (open rasters are reused across that job's windows)."""

    def __init__(self, model: Any):
        self.model = model
        self.job: ClassifyJob | None = None
        self.classifier: WindowClassifier | None = None

    def get(self, job: ClassifyJob) -> WindowClassifier:
        if self.classifier is None or self.job is None or self.job.token != job.token:
            self.close()
            self.classifier, self.job = WindowClassifier(job, self.model), job
        return self.classifier

    def close(self) -> None:
        if self.classifier is not None:
            self.classifier.close()
            self.classifier = None


class SerialExecutor(Executor):
    """In this process and thread; the simplest and the reference for the others."""

    def __init__(self, model: Any):
        self.classifiers = _Classifiers(model)

    def imap(self, job: ClassifyJob, windows: Iterable[Window]) -> Iterator[Result]:
        classifier = self.classifiers.get(job)
        for window in windows:
            yield window, classifier(window)

    def close(self) -> None:
        self.classifiers.close()


# --------------------------------------------------------------------- process pool workers

_WORKER: _Classifiers | None = None


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
    _WORKER = _Classifiers(load_model(model_path))  # the model is loaded here, once


def _classify_in_worker(job: ClassifyJob, window: tuple[int, int, int, int]) -> np.ndarray:
    assert _WORKER is not None
    return _WORKER.get(job)(Window(*window))


class _BoundedPool(Executor):
    """Keeps at most ``inflight`` windows submitted; yields each result as it completes."""

    pool: cf.Executor
    inflight: int

    def _submit(self, job: ClassifyJob, window: Window) -> cf.Future:
        raise NotImplementedError

    def imap(self, job: ClassifyJob, windows: Iterable[Window]) -> Iterator[Result]:
        pending: dict[cf.Future, Window] = {}
        try:
            for window in windows:
                pending[self._submit(job, window)] = window
                if len(pending) >= self.inflight:
                    done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                    yield from ((pending.pop(f), f.result()) for f in done)
            while pending:
                done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                yield from ((pending.pop(f), f.result()) for f in done)
        finally:
            for f in pending:
                f.cancel()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


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
        # Start every worker now, so imports and model loading overlap pass 1.
        for _ in range(workers):
            self.pool.submit(int)

    def _submit(self, job: ClassifyJob, window: Window) -> cf.Future:
        key = (int(window.col_off), int(window.row_off), int(window.width), int(window.height))
        return self.pool.submit(_classify_in_worker, job, key)


class ThreadExecutor(_BoundedPool):
    """Threads share one model; each thread has its own open rasters."""

    def __init__(self, model: Any, workers: int):
        self.model = model
        self.local = threading.local()
        self.all: list[_Classifiers] = []
        self.lock = threading.Lock()
        self.pool = cf.ThreadPoolExecutor(max_workers=workers)
        self.inflight = 2 * workers

    def _classifier(self, job: ClassifyJob) -> WindowClassifier:
        classifiers = getattr(self.local, "classifiers", None)
        if classifiers is None:
            classifiers = self.local.classifiers = _Classifiers(self.model)
            with self.lock:
                self.all.append(classifiers)
        return classifiers.get(job)

    def _submit(self, job: ClassifyJob, window: Window) -> cf.Future:
        return self.pool.submit(lambda: self._classifier(job)(window))

    def close(self) -> None:
        super().close()
        for classifiers in self.all:
            classifiers.close()


def make_executor(
    model_path: Path,
    workers: int,
    engine: str = "processes",
    model: Any | None = None,
    scheduler: str = "local",
) -> Executor:
    """The engine for ``workers``: serial for 1; ``model`` is reused where it can be.

    ``dask`` runs on a Dask cluster (``scheduler``: an address, or ``local`` to start one of
    ``workers`` processes); ``local`` is the default local engine (threads).
    """
    if engine == "dask":
        from .dask_engine import DaskExecutor

        return DaskExecutor(model_path, workers, scheduler)
    if workers <= 1:
        return SerialExecutor(model if model is not None else load_model(model_path))
    if engine in ("threads", "local"):
        return ThreadExecutor(model if model is not None else load_model(model_path), workers)
    return ProcessExecutor(model_path, workers)
