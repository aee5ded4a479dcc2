"""Executors run ``ClassifyJob`` over windows and yield (window, codes) in any order.

The pipeline only sees ``Executor.imap``; an engine (serial, thread pool, process pool, and
later Dask) plugs in here without touching it. In-flight windows are bounded so memory stays
flat however many windows there are.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import signal
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
from rasterio.windows import Window

from .classify import ClassifyJob, WindowClassifier


class Executor(ABC):
    """Classifies windows; results come back in any order."""

    @abstractmethod
    def imap(self, windows: Iterable[Window]) -> Iterator[tuple[Window, np.ndarray]]: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialExecutor(Executor):
    """In this process and thread; the simplest and the reference for the others."""

    def __init__(self, job: ClassifyJob, model: Any | None = None):
        self.classifier = WindowClassifier(job, model)

    def imap(self, windows: Iterable[Window]) -> Iterator[tuple[Window, np.ndarray]]:
        for window in windows:
            yield window, self.classifier(window)

    def close(self) -> None:
        self.classifier.close()


# --------------------------------------------------------------------- process pool workers

_WORKER: WindowClassifier | None = None


def _init_worker(job: ClassifyJob) -> None:
    global _WORKER
    # Ctrl-C reaches the whole process group: the main process alone decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER = WindowClassifier(job)  # the model is loaded here, once per worker process


def _classify_in_worker(window: tuple[int, int, int, int]) -> tuple[tuple, np.ndarray]:
    assert _WORKER is not None
    return window, _WORKER(Window(*window))


class _BoundedPool(Executor):
    """Keeps at most ``inflight`` windows submitted; yields each result as it completes."""

    pool: cf.Executor
    inflight: int

    def _submit(self, window: Window) -> cf.Future:
        raise NotImplementedError

    def imap(self, windows: Iterable[Window]) -> Iterator[tuple[Window, np.ndarray]]:
        pending: set[cf.Future] = set()
        source = iter(windows)
        try:
            for window in source:
                pending.add(self._submit(window))
                if len(pending) >= self.inflight:
                    done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                    yield from (f.result() for f in done)
            while pending:
                done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                yield from (f.result() for f in done)
        finally:
            for f in pending:
                f.cancel()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class ProcessExecutor(_BoundedPool):
    """Worker processes read and predict; only codes (1 byte a pixel) come back."""

    def __init__(self, job: ClassifyJob, workers: int):
        context = multiprocessing.get_context("spawn")
        self.pool = cf.ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(job,)
        )
        self.inflight = 2 * workers

    def _submit(self, window: Window) -> cf.Future:
        key = (int(window.col_off), int(window.row_off), int(window.width), int(window.height))
        future = self.pool.submit(_classify_in_worker, key)
        outer: cf.Future = cf.Future()

        def relay(f: cf.Future) -> None:
            if f.cancelled():
                outer.cancel()
            elif f.exception() is not None:
                outer.set_exception(f.exception())
            else:
                _, codes = f.result()
                outer.set_result((window, codes))

        future.add_done_callback(relay)
        return outer


class ThreadExecutor(_BoundedPool):
    """Threads share one model; each thread has its own open rasters."""

    def __init__(self, job: ClassifyJob, workers: int, model: Any):
        self.job, self.model = job, model
        self.local = threading.local()
        self.classifiers: list[WindowClassifier] = []
        self.lock = threading.Lock()
        self.pool = cf.ThreadPoolExecutor(max_workers=workers)
        self.inflight = 2 * workers

    def _classifier(self) -> WindowClassifier:
        classifier = getattr(self.local, "classifier", None)
        if classifier is None:
            classifier = WindowClassifier(self.job, self.model)
            self.local.classifier = classifier
            with self.lock:
                self.classifiers.append(classifier)
        return classifier

    def _submit(self, window: Window) -> cf.Future:
        return self.pool.submit(lambda: (window, self._classifier()(window)))

    def close(self) -> None:
        super().close()
        for classifier in self.classifiers:
            classifier.close()


def make_executor(
    job: ClassifyJob, workers: int, engine: str = "processes", model: Any | None = None
) -> Executor:
    if workers <= 1:
        return SerialExecutor(job, model)
    if engine == "threads":
        return ThreadExecutor(job, workers, model)
    return ProcessExecutor(job, workers)
