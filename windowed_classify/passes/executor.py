"""The executor interface the passes run on: pass 1 (counting tasks) and pass 2 (windows,
results in any order). The passes own it; the engines (serial, threads, processes, Dask)
implement it.

The pipeline only sees ``Executor.imap(job, windows)`` and ``Executor.compute_stats``; an
engine (serial, threads, processes, Dask) plugs in here without touching it. An executor is
built from the model's path before pass 1, so worker processes start and load the model (once
each) while the statistics are computed. The job (layers, medians, legend: a few KB) travels
with each task; the model never does. In-flight work is bounded so memory stays flat.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np
from rasterio.windows import Window

from ..inputs.grid import Grid
from ..inputs.layers import Layer
from ..outputs.results import WindowResult
from .stats import Counts, LayerStats, Task, compute_stats
from .window import PredictJob

Result = tuple[Window, WindowResult]
T = TypeVar("T")


class Cancellable(Protocol):
    def cancel(self) -> Any: ...


F = TypeVar("F", bound=Cancellable)


def bounded(
    submit: Callable[[T], F],
    take: Callable[[], T | None],
    limit: int,
    wait: Callable[[Collection[F]], Iterable[F]],
) -> Iterator[tuple[T, F]]:
    """Keep at most ``limit`` items submitted; yield (item, future) as each completes.

    ``take()`` gives the next item whenever there is room (None: nothing more for now); it may
    give more after results came back (pass 1's next stage depends on earlier counts). Ends
    when nothing is pending and ``take`` has nothing. ``wait(pending)`` returns the futures
    that are done, blocking until one is. Whatever is still pending is cancelled on exit.
    """
    pending: dict[F, T] = {}
    try:
        while True:
            while len(pending) < limit and (item := take()) is not None:
                pending[submit(item)] = item
            if not pending:
                return
            for future in wait(pending):
                yield pending.pop(future), future
    finally:
        for future in pending:
            future.cancel()


def taker(items: Iterable[T]) -> Callable[[], T | None]:
    """``take`` over a plain iterable."""
    it = iter(items)
    return lambda: next(it, None)


Observer = Callable[[Window, np.ndarray, np.ndarray], object]


class Executor(ABC):
    """Pass 1 (statistics) and pass 2 (classify windows; results come back in any order)."""

    #: whether ``imap`` can hand each window's values to an ``observe`` callback in this
    #: process (pass 1 fused into pass 2); engines whose workers are other processes cannot
    observes = False

    @abstractmethod
    def imap(
        self, job: PredictJob, windows: Iterable[Window], observe: Observer | None = None
    ) -> Iterator[Result]: ...

    @abstractmethod
    def count(self, take: Callable[[], Task | None]) -> Iterator[tuple[Task, Counts]]:
        """Run pass 1's counting tasks as ``take`` gives them; yield each with its counts."""

    #: whether pass 1 on its own may count against a guide's band (passes.fused): each task
    #: sends the keys near the median (about 30% of what it read) back to this process. Yes
    #: for local workers; a cluster's would send them over the network
    banded_stats = True

    #: workers on this machine (what work done in this process, e.g. finishing pass 1's
    #: medians, may spread over)
    workers = 1

    #: layers whose counts are merged at once in pass 1 (enough tasks to keep workers busy)
    stats_layers: int = 2

    def compute_stats(
        self, layers: Sequence[Layer], grid: Grid, progress: Callable[[int], object]
    ) -> dict[str, LayerStats]:
        """Exact per-layer statistics: one algorithm (passes.stats), this engine's workers."""
        return compute_stats(layers, grid, self.count, self.stats_layers, progress)

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def describe(self) -> dict[str, Any]:
        """Fields the engine adds to the run report (a distributed engine names its workers)."""
        return {}

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
