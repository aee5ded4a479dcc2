"""The engine interface: pass 1 (statistics) and pass 2 (windows, results in any order).

The pipeline only sees ``Executor.imap(job, windows)`` and ``Executor.compute_stats``; an
engine (serial, threads, processes, Dask) plugs in here without touching it. An executor is
built from the model's path before pass 1, so worker processes start and load the model (once
each) while the statistics are computed. The job (layers, medians, legend: a few KB) travels
with each task; the model never does. In-flight windows are bounded so memory stays flat.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from rasterio.windows import Window

from ..inputs.grid import Grid
from ..inputs.layers import Layer
from ..passes.stats import LayerStats, compute_stats
from ..passes.window import ClassifyJob, WindowClassifier

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
