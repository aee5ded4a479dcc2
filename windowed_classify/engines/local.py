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
import queue
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from ..passes.executor import Executor, Job, Pin, bounded
from ..passes.worker import WorkerState

LOCAL = "local"  # the worker id of this process
_END = object()  # no more items


def read_ahead_of(job: Job) -> Callable[[Any, WorkerState], None] | None:
    """The job's ``prefetch(item, worker)`` when it reads ahead (``reads_ahead``: remote
    layers, read-ahead on): it names the item the calling thread will run after the next
    one, whose window is then read while the thread computes that next one."""
    return getattr(job, "prefetch", None) if getattr(job, "reads_ahead", False) else None


class SerialExecutor(Executor):
    """In this process and thread; the simplest, and the reference for the others."""

    def __init__(self, model: Any):
        self.state = WorkerState(LOCAL, model=model)

    def run(self, job: Job, items: Iterable[Any], pin: Pin | None = None) -> Iterator[Any]:
        prefetch = read_ahead_of(job)
        it = iter(items)
        item = next(it, _END)
        while item is not _END:
            after = next(it, _END)
            if prefetch is not None and after is not _END:
                prefetch(after, self.state)  # read while this one is computed
            yield item, self.took(job(item, self.state))
            item = after

    def forget(self, token: str, folder: Path | None) -> None:
        self.state.forget(token)
        super().forget(token, folder)

    def close(self) -> None:
        self.state.close()


def _first_done(pending: Collection[cf.Future]) -> set[cf.Future]:
    return cf.wait(pending, return_when=cf.FIRST_COMPLETED).done


class ThreadExecutor(Executor):
    """Threads share one model and one WorkerState; each thread has its own open rasters."""

    def __init__(self, model: Any, workers: int):
        self.state = WorkerState(LOCAL, model=model)
        self.pool = cf.ThreadPoolExecutor(max_workers=workers)
        self.workers = workers

    def run(self, job: Job, items: Iterable[Any], pin: Pin | None = None) -> Iterator[Any]:
        prefetch = read_ahead_of(job)
        if prefetch is not None:
            yield from self._ahead(job, prefetch, items)
            return
        submit = lambda item: self.pool.submit(job, item, self.state)  # noqa: E731
        for item, future in bounded(submit, items, 2 * self.workers, _first_done):
            yield item, self.took(future.result())

    def _ahead(
        self, job: Job, prefetch: Callable[[Any, WorkerState], None], items: Iterable[Any]
    ) -> Iterator[Any]:
        """Each thread takes its next item as it starts one and has its window read ahead
        while it computes: reads overlap compute. At most ``2 x workers`` items are taken and
        not yet handed back (a thread's own and the one it reads ahead, or results waiting)."""
        slots = threading.Semaphore(2 * self.workers)
        source = iter(items)
        lock = threading.Lock()
        stop = threading.Event()
        results: queue.Queue[tuple[Any, Any, BaseException | None]] = queue.Queue()

        def take() -> Any:
            while not slots.acquire(timeout=0.2):
                if stop.is_set():
                    return _END
            with lock:
                item = next(source, _END) if not stop.is_set() else _END
            if item is _END:
                slots.release()
            return item

        def loop() -> None:
            try:
                item = take()
                while item is not _END and not stop.is_set():
                    after = take()
                    if after is not _END:
                        prefetch(after, self.state)
                    results.put((item, job(item, self.state), None))
                    item = after
            except BaseException as exc:  # handed to the caller, which stops the others
                results.put((None, None, exc))
            finally:
                results.put((_END, None, None))

        loops = [self.pool.submit(loop) for _ in range(self.workers)]
        try:
            ended = 0
            while ended < len(loops):
                item, result, error = results.get()
                if error is not None:
                    raise error
                if item is _END:
                    ended += 1
                    continue
                slots.release()
                yield item, self.took(result)
        finally:
            stop.set()
            cf.wait(loops)  # no thread still reads or computes for this job

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
