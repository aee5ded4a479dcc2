"""The local engines: serial (in this thread), threads (one model, this process), processes
(one model each).

Threads share one model and each has its own open rasters: GDAL reads and the predict of
scikit-learn trees, LightGBM and onnxruntime release the GIL. Processes load the model once
each, for models whose predict holds it. A job travels once to each worker process, in a
file; its items are small.
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
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from ..passes.executor import Executor, Job, Pin, bounded
from ..passes.worker import WorkerState

LOCAL = "local"  # the worker id of this process


class SerialExecutor(Executor):
    """In this process and thread; the simplest, and the reference for the others."""

    name = "serial"

    def __init__(self, model: Any):
        self.state = WorkerState(LOCAL, model=model)

    def run(self, job: Job, items: Iterable[Any], pin: Pin | None = None) -> Iterator[Any]:
        for item in items:
            yield item, self.took(job(item, self.state))

    def forget(self, token: str, folder: Path | None) -> None:
        self.state.forget(token)
        super().forget(token, folder)

    def close(self) -> None:
        self.state.close()


def _first_done(pending: Collection[cf.Future]) -> set[cf.Future]:
    return cf.wait(pending, return_when=cf.FIRST_COMPLETED).done


class ThreadExecutor(Executor):
    """Threads share one model and one WorkerState; each thread has its own open rasters."""

    name = "threads"

    def __init__(self, model: Any, workers: int):
        self.state = WorkerState(LOCAL, model=model)
        self.pool = cf.ThreadPoolExecutor(max_workers=workers)
        self.workers = workers

    def run(self, job: Job, items: Iterable[Any], pin: Pin | None = None) -> Iterator[Any]:
        submit = lambda item: self.pool.submit(job, item, self.state)  # noqa: E731
        for item, future in bounded(submit, items, 2 * self.workers, _first_done):
            yield item, self.took(future.result())

    def forget(self, token: str, folder: Path | None) -> None:
        self.state.forget(token)
        super().forget(token, folder)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.state.close()


# --------------------------------------------------------------------- process pool workers

_STATE: WorkerState | None = None
_JOBS: dict[str, Any] = {}  # the job of a token, read once per worker from its file


def _exit_with_parent(parent: int, interval: float = 1.0) -> None:
    """A worker never outlives the main process (killed with SIGKILL, say)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _init_worker(model_path: Path) -> None:
    global _STATE
    # Ctrl-C reaches the whole process group: the main process alone decides how to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent(os.getppid())
    _STATE = WorkerState(f"process-{os.getpid()}")
    _STATE.model(model_path)  # loaded here, once, while the main process reads pass 1


JobRef = tuple[str, str]  # (the job's token, the file its pickle is in)


def _run_in_worker(ref: JobRef, item: Any) -> Any:
    assert _STATE is not None
    token, path = ref
    if token not in _JOBS:
        _JOBS[token] = pickle.loads(Path(path).read_bytes())
    return _JOBS[token](item, _STATE)


@contextlib.contextmanager
def job_file(job: Job) -> Iterator[JobRef]:
    """The job pickled once into a temporary file: each worker process reads it once, instead
    of every item carrying it (an AOA model carries its training rows, megabytes)."""
    fd, path = tempfile.mkstemp(prefix="windowed_classify-job-", suffix=".pickle")
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(job, f, protocol=pickle.HIGHEST_PROTOCOL)
        yield (job.token + path, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


class ProcessExecutor(Executor):
    """Worker processes read and compute; only small results come back."""

    name = "processes"

    def __init__(self, model_path: Path, workers: int):
        self.pool = cf.ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(model_path,),
        )
        self.workers = workers
        # Start every worker now, so imports and model loading overlap pass 1.
        for _ in range(workers):
            self.pool.submit(int)

    def run(self, job: Job, items: Iterable[Any], pin: Pin | None = None) -> Iterator[Any]:
        with job_file(job) as ref:
            submit = lambda item: self.pool.submit(_run_in_worker, ref, item)  # noqa: E731
            for item, future in bounded(submit, items, 2 * self.workers, _first_done):
                yield item, self.took(future.result())

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
