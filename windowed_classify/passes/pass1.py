"""Pass 1: every model layer's median, min, max and counts, from the statistics cache where it
holds them, counted during pass 2 when nothing needs a median before (``fused``), else read
first, on its own."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from rasterio.windows import Window

from ..progress import Progress
from .executor import Executor, Observer
from .fused import FusedStats
from .stats import HOLD_PIXELS, LayerStats
from .statscache import StatsCache

if TYPE_CHECKING:
    from .prepared import Prepared

log = logging.getLogger(__name__)


class Statistics:
    """The statistics of one run. ``begin`` gives them at once (cache, or a pass of its own)
    or, when pass 2 can count them, None and an ``observe`` for pass 2; ``end`` completes
    them after pass 2."""

    def __init__(self, prep: Prepared, executor: Executor, recompute: bool, progress: str):
        self.prep, self.executor, self.progress = prep, executor, progress
        cfg = prep.config.processing
        self.cache = StatsCache(cfg.cache_dir) if cfg.stats_cache else None
        self.found: dict[str, LayerStats] = {}
        if self.cache is not None and not recompute:
            for layer in prep.layers:
                hit = self.cache.get(layer)
                if hit is not None:
                    self.found[layer.name] = hit
        self.todo = [layer for layer in prep.layers if layer.name not in self.found]
        self.fused: FusedStats | None = None
        self.mode = "cache" if not self.todo else "separate"
        self.end_seconds = 0.0  # the time ``end`` took (fused: after pass 2's windows)

    @property
    def state(self) -> str:
        """The statistics cache's part: disabled, used, computed or partly used."""
        if self.cache is None:
            return "disabled"
        if not self.todo:
            return "used"
        return "computed" if len(self.todo) == len(self.prep.layers) else "partly used"

    def begin(self, windows: Sequence[Window] | None) -> dict[str, LayerStats] | None:
        """The statistics now, or None when they are counted during pass 2 (``windows``: its
        windows, when it may; only with nodata.threshold 0 does no pixel need a median)."""
        if not self.todo:
            return self._done()
        grid = self.prep.grid
        spill = self.prep.config.output.path.parent  # the keys near each median: on disk
        guide = min(HOLD_PIXELS, grid.pixels) * len(self.todo)  # values the guide reads
        fuse = (
            windows is not None
            and self.prep.config.nodata.threshold == 0
            and self.executor.observes
        )
        if fuse:
            assert windows is not None
            self.mode = "fused"
            rows = [self.prep.layers.index(layer) for layer in self.todo]
            self.fused = FusedStats(self.todo, grid, rows, spill)
            with Progress("pass1", guide, self.progress) as bar:
                self.fused.guide(self.executor.count, bar.update)
            return None
        if self.executor.banded_stats:  # counted as pass 2 would, but first: one read
            apart = FusedStats(self.todo, grid, None, spill)
            try:
                with Progress("pass1", guide + grid.pixels * len(self.todo), self.progress) as bar:
                    apart.guide(self.executor.count, bar.update)
                    apart.count_apart(self.executor.count, bar.update)
                    fresh = apart.finish(self.executor.count, self.executor.workers)
            finally:
                apart.close()
            return self._done(fresh)
        with Progress("pass1", grid.pixels * len(self.todo), self.progress) as bar:
            fresh = self.executor.compute_stats(self.todo, grid, progress=bar.update)
        return self._done(fresh)

    def close(self) -> None:
        """Remove what counting during pass 2 left on disk (its spill files)."""
        if self.fused is not None:
            self.fused.close()

    def __enter__(self) -> Statistics:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def observe(self) -> Observer | None:
        """What pass 2 hands each window's values to (None: nothing to count)."""
        return self.fused.add if self.fused is not None else None

    def end(self) -> dict[str, LayerStats]:
        """After pass 2: the counted statistics finished (a missed median bin read again)."""
        assert self.fused is not None
        start = time.perf_counter()
        try:
            return self._done(self.fused.finish(self.executor.count, self.executor.workers))
        finally:
            self.end_seconds = time.perf_counter() - start

    def _done(self, fresh: dict[str, LayerStats] | None = None) -> dict[str, LayerStats]:
        if fresh:
            if self.cache is not None:
                for layer in self.todo:
                    self.cache.put(layer, fresh[layer.name])
            self.found.update(fresh)
        for layer in self.prep.layers:
            s = self.found[layer.name]
            log.info(
                "layer %s: median %s, min %s, max %s, %d valid, %d nodata",
                layer.name,
                s.median,
                s.min,
                s.max,
                s.valid_count,
                s.nodata_count,
            )
        return {layer.name: self.found[layer.name] for layer in self.prep.layers}


def unknown_medians(n: int) -> np.ndarray:
    """Medians for a pass 2 that fills no pixel (nodata.threshold 0, statistics still being
    counted): NaN, so that a fill, were there one, could never pass unnoticed."""
    return np.full(n, np.nan, dtype=np.float32)
