"""The executor interface the passes run on, which the engines (serial, threads, processes,
Dask) implement.

A pass hands an executor a job (a small picklable object: a window's prediction, a block
group's counting, a spill's selection) and its items; each worker calls ``job(item,
worker)`` with its own ``WorkerState`` (the model loaded once per process, open rasters per
thread, its spill files) and the results come back in any order. An item may be pinned to
the worker that holds its files (a Dask worker's own disk). In-flight items are bounded so
memory stays flat; the model never travels with an item.
"""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .worker import WorkerState

T = TypeVar("T")


class Job(Protocol):
    """A piece of work run item by item on the workers."""

    @property
    def token(self) -> str:
        """What the job's resources are kept under on a worker (read-only: a frozen job's
        field or a property)."""
        ...

    def __call__(self, item: Any, worker: WorkerState) -> Any: ...


Pin = Callable[[Any], "str | None"]  # item -> the worker (id) it must run on, or None


class WorkerLost(Exception):
    """A worker is gone before an item pinned to it (reading its own files) could run: the
    passes redo that worker's part elsewhere."""

    def __init__(self, worker: str):
        super().__init__(worker)  # the only argument: the exception pickles (raised on a worker)
        self.worker = worker

    def __str__(self) -> str:
        return f"worker {self.worker} is gone"


class Cancellable(Protocol):
    def cancel(self) -> Any: ...


F = TypeVar("F", bound=Cancellable)


def bounded(
    submit: Callable[[T], F],
    items: Iterable[T],
    limit: int,
    wait: Callable[[Collection[F]], Iterable[F]],
) -> Iterator[tuple[T, F]]:
    """Keep at most ``limit`` items submitted; yield (item, future) as each completes.
    ``wait(pending)`` returns the futures that are done, blocking until one is. Whatever is
    still pending is cancelled on exit."""
    pending: dict[F, T] = {}
    it = iter(items)
    try:
        while True:
            while len(pending) < limit and (item := next(it, None)) is not None:
                pending[submit(item)] = item
            if not pending:
                return
            for future in wait(pending):
                yield pending.pop(future), future
    finally:
        for future in pending:
            future.cancel()


class Executor(ABC):
    """Runs jobs on workers; results come back in any order."""

    #: the engine's name, as the report and ``check`` give it
    name = ""
    #: workers that run items at once (what the passes size their work by)
    workers = 1
    #: whether items may be pinned to a worker (whose own disk holds their files)
    pins = False
    #: remote reads retried by the items run so far: a result that read says how many
    #: (its ``retries``), and every engine adds them up here as the results pass
    retries = 0

    def took(self, result: T) -> T:
        """A result on its way to the pass: its retries counted."""
        self.retries += int(getattr(result, "retries", 0) or 0)
        return result

    @abstractmethod
    def run(self, job: Job, items: Iterable[Any], pin: Pin | None = None) -> Iterator[Any]:
        """Yield (item, result) for every item, as each completes."""

    def alive(self) -> set[str] | None:
        """The ids of the workers alive now; None when workers cannot go away (local)."""
        return None

    def forget(self, token: str, folder: Path | None) -> None:
        """Close and remove what a finished job kept on the workers (its spills under
        ``folder``, or on the workers' own disks)."""
        if folder is not None:
            shutil.rmtree(folder / token, ignore_errors=True)

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def describe(self) -> dict[str, Any]:
        """Fields the engine adds to the run report (a distributed engine names its workers)."""
        return {}

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
