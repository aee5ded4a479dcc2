"""The local engines: serial (in this thread), threads (one model), processes (one each).

Threads share one model and each has its own open rasters: GDAL reads and the predict of
scikit-learn trees, LightGBM and onnxruntime release the GIL. Processes load the model once
each, for models whose predict holds it.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from ..models.load import load_model
from ..passes.window import ClassifyJob, WindowClassifier
from .base import Executor, Result, _Classifiers


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
