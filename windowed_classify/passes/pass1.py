"""Pass 1: every model layer's median, min, max and counts, exactly, and its nodata hints.

One algorithm on every engine (passes/band.py): a guide reads a sample of the stack; each
layer's values are counted against a band of keys around its median, those inside the band
kept on the disk of the worker that read them; the median's bin is then selected among the
kept keys. Where the counting happens depends on the run:

- ``cache``: every layer's statistics are in the statistics cache;
- ``fused``: nodata.threshold 0 fills no pixel, so pass 2 starts at once and every window it
  reads is counted too (one read of the stack);
- ``deferred``: nodata.threshold above 0 and few pixels need a fill (the guide says): pass 2
  predicts every row that needs none at once, keeps the others on the workers' disks, and
  predicts them once the medians are known (one read of the stack);
- ``separate``: many pixels need a fill, or the run resumes: pass 1 counts the layers' blocks
  on its own first, then pass 2 runs with the medians (two reads of the stack).

A layer whose median the guide's band missed is counted again by passes/histogram.py. On
Dask, an item whose kept keys were on a worker that is gone is counted again elsewhere.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rasterio.windows import Window

from ..errors import InputError
from ..inputs.hints import Summary
from ..inputs.windows import WindowKey, window_key
from ..progress import Progress
from .band import EVERY, Band, LayerCounts, band_of, locate, median_of, middle_ranks, value_at
from .counting import Counted, CountJob, CountSpec, RecountJob, SelectJob
from .executor import Executor, WorkerLost
from .guide import SAMPLE_PIXELS, GuideJob, grid_sample, guide_windows
from .histogram import histogram_stats
from .stats import LayerStats, block_tasks
from .statscache import StatsCache

if TYPE_CHECKING:
    from .prepared import Prepared

log = logging.getLogger(__name__)

MAX_DEFERRED = 0.5  # above this share of pixels needing a fill, pass 1 reads first
MIN_GUIDE = 16  # guide windows at the least: spread over the grid, they find each median
LOST_RETRIES = 3  # workers lost in the finish before the run gives up


class Statistics:
    """The statistics of one run. ``begin`` gives them at once (cache, or a pass of its own)
    or None when pass 2 counts them (``count``, ``accept``); ``end`` completes them."""

    def __init__(
        self,
        prep: Prepared,
        executor: Executor,
        recompute: bool,
        progress: str,
        spill_dir: Path,
    ):
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
        self.rows = tuple(prep.layers.index(layer) for layer in self.todo)
        self.token = uuid.uuid4().hex
        # where workers keep their keys: beside the output, or a Dask worker's own disk
        self.folder: Path | None = None if executor.pins else spill_dir
        self.mode = "cache" if not self.todo else "separate"
        self.bands: list[Band] = []
        self.summaries: list[Summary] = []
        self.fill_share = 0.0
        # the counts accepted from each worker (a worker that is gone takes its own away)
        self.by_worker: dict[str, list[LayerCounts]] = {}
        self.owner: dict[int, str] = {}  # item -> the worker whose counts were accepted
        self.recount: dict[int, Any] = {}  # item -> how to count it again
        self.end_seconds = 0.0  # the time ``end`` took (fused: after pass 2's windows)
        self.guide_seconds = 0.0
        # the guide windows' answers, until the bands are known; their pixels to fill
        self.guided: list[tuple[int, WindowKey, str, list[LayerCounts]]] = []
        self.fill = self.guide_pixels = 0

    @property
    def state(self) -> str:
        """The statistics cache's part: disabled, used, computed or partly used."""
        if self.cache is None:
            return "disabled"
        if not self.todo:
            return "used"
        return "computed" if len(self.todo) == len(self.prep.layers) else "partly used"

    # ------------------------------------------------------------------ begin

    def begin(self, windows: Sequence[Window] | None) -> dict[str, LayerStats] | None:
        """The statistics now, or None when pass 2 counts them (``windows``: its windows, or
        None when it cannot: a resumed run). Counted in pass 2, the guide is pass 2's first
        windows (``guide_items``), so no value is read twice."""
        if not self.todo:
            return self._done({})
        if windows is not None:
            self.mode = "fused" if self.prep.config.nodata.threshold == 0 else "deferred"
            return None
        self.mode = "separate"
        self._guide()
        self._count_apart()
        return self.end()

    # ------------------------------------------------------------------ the guide in pass 2

    @staticmethod  # check estimates the guide's spill from it
    def guide_items(windows: Sequence[Window]) -> list[int]:
        """The pass-2 windows that are the guide: about ``SAMPLE_PIXELS`` of every layer, on
        a grid of the windows' rows and columns (at least ``MIN_GUIDE`` windows)."""
        keys = [window_key(w) for w in windows]
        per = max(1, keys[0][2] * keys[0][3]) if keys else 1
        k = max(MIN_GUIDE, -(-SAMPLE_PIXELS // per))
        return list(range(len(keys))) if k >= len(keys) else grid_sample(keys, k)

    @property
    def guide_spec(self) -> CountSpec:
        """Counts of the guide windows: against a band of every bin (all their keys kept)."""
        return CountSpec(self.rows, tuple(EVERY for _ in self.todo), self.folder, self.token)

    def take_guide(self, item: int, window: WindowKey, got: Any) -> None:
        """One guide window's counts (every key's high bin), hints and pixels to fill."""
        self.guided.append((item, window, got.worker, got.counts))
        fill, summaries = got.guided
        self.fill += fill
        self.guide_pixels += window[2] * window[3]
        if not self.summaries:
            self.summaries = [Summary() for _ in self.todo]
        for j, summary in enumerate(summaries):
            self.summaries[j].merge(summary)

    def after_guide(
        self, windows: Sequence[Window], done: set[int]
    ) -> dict[str, LayerStats] | None:
        """The bands, from the guide windows' histograms; the guide windows' counts against
        them (their kept keys are every key: what the selection needs is among them). When
        many pixels need a fill (``MAX_DEFERRED``), the other windows are counted now and the
        statistics finished (returned): pass 2 goes on with the medians known."""
        highs = [np.zeros(1 << 16, dtype=np.int64) for _ in self.todo]
        for _, _, _, counts in self.guided:
            for j, c in enumerate(counts):
                if c.bins is not None:
                    where, n = c.bins
                    highs[j][where] += n
        self.bands = [band_of(h) for h in highs]
        self.fill_share = self.fill / max(self.guide_pixels, 1)
        for item, window, worker, counts in self.guided:
            banded = [_against(c, band) for c, band in zip(counts, self.bands, strict=True)]
            self.accept(item, Counted(worker, banded), window=window)
        self.guided = []
        if self.mode == "deferred" and self.fill_share > MAX_DEFERRED:
            self.mode = "separate"
            rest = [window_item(i, w) for i, w in enumerate(windows) if i not in done]
            job = RecountJob(tuple(self.prep.layers), self.spec)
            total = sum(k[2] * k[3] for _, k in rest) * len(self.prep.layers)
            if rest:
                with Progress("pass1", total, self.progress) as bar:
                    for (item, key), got in self.executor.run(job, rest):
                        self.accept(item, got, window=key)
                        bar.update(key[2] * key[3] * len(self.prep.layers))
            return self.end()
        return None

    def _guide(self) -> None:
        start = time.perf_counter()
        prep = self.prep
        windows = guide_windows(prep.grid, [la.block_shape for la in prep.layers])
        job = GuideJob(tuple(prep.layers), self.rows, prep.config.nodata.threshold, self.token)
        highs = [np.zeros(1 << 16, dtype=np.int64) for _ in self.todo]
        self.summaries = [Summary() for _ in self.todo]
        pixels = fill = 0
        total = sum(w[2] * w[3] for w in windows) * len(prep.layers)
        with Progress("pass1", total, self.progress) as bar:
            for _, got in self.executor.run(job, windows):
                pixels += got.pixels
                fill += got.fill
                for j, (where, counts) in enumerate(got.highs):
                    highs[j][where] += counts
                    self.summaries[j].merge(got.summaries[j])
                bar.update(got.pixels * len(prep.layers))
        self.executor.forget(self.token, None)  # the guide's readers
        self.bands = [band_of(h) for h in highs]
        self.fill_share = fill / max(pixels, 1)
        self.guide_seconds = time.perf_counter() - start
        log.debug("guide: %d windows in %.2f s", len(windows), self.guide_seconds)

    def _count_apart(self) -> None:
        """Every block of every layer counted against its band, on its own (one read)."""
        tasks = [
            (t, j, windows)
            for t, (j, windows) in enumerate(
                (j, w)
                for j, layer in enumerate(self.todo)
                for w in block_tasks(self.prep.grid, layer)
            )
        ]
        job = CountJob(tuple(self.todo), self.spec)
        with Progress("pass1", self.prep.grid.pixels * len(self.todo), self.progress) as bar:
            for (task, j, windows), got in self.executor.run(job, tasks):
                self.accept(task, got, layers=[j])
                self.recount[task] = ("task", (task, j, windows))
                bar.update(sum(w[2] * w[3] for w in windows))

    # ------------------------------------------------------------------ counting in pass 2

    @property
    def spec(self) -> CountSpec:
        return CountSpec(self.rows, tuple(self.bands), self.folder, self.token)

    def accept(
        self,
        item: int,
        got: Counted,
        layers: Iterable[int] | None = None,
        window: WindowKey | None = None,
    ) -> None:
        """Add one item's counts (a window of pass 2, a task): the counts of ``layers`` (all
        counted layers by default), whose keys ``got.worker`` keeps."""
        self.owner[item] = got.worker
        mine = self.by_worker.setdefault(got.worker, [LayerCounts() for _ in self.todo])
        which = list(layers) if layers is not None else list(range(len(self.todo)))
        for j, counts in zip(which, got.counts, strict=True):
            mine[j].merge(counts, self.bands[j])
        if window is not None:
            self.recount[item] = ("window", window)

    # ------------------------------------------------------------------ end

    def end(self) -> dict[str, LayerStats]:
        """The counted statistics finished: each median selected among the kept keys (a layer
        the band missed counted again)."""
        start = time.perf_counter()
        try:
            return self._done(self._finish())
        finally:
            self.end_seconds += time.perf_counter() - start
            self.executor.forget(self.token, self.folder)

    def _totals(self) -> list[LayerCounts]:
        totals = [LayerCounts() for _ in self.todo]
        for counts in self.by_worker.values():
            for j, c in enumerate(counts):
                totals[j].merge(_dense_as_sparse(c), self.bands[j])
        return totals

    def _finish(self) -> dict[str, LayerStats]:
        self._recount_lost()
        totals = self._totals()
        where: dict[int, list[tuple[int, int]]] = {}
        missed = []
        for j, (layer, total) in enumerate(zip(self.todo, totals, strict=True)):
            if total.valid == 0:
                raise InputError(
                    f"layer '{layer.name}' ({layer.path}) has no valid pixel: every value is nodata"
                )
            found = locate(total, self.bands[j], middle_ranks(total.valid))
            if found is None:
                missed.append(j)
            else:
                where[j] = found
        start = time.perf_counter()
        lows = self._select(where)
        log.debug("selection of %d medians: %.2f s", len(where), time.perf_counter() - start)
        out: dict[str, LayerStats] = {}
        for j, found in where.items():
            total = totals[j]
            picked = [value_at(b, lows[j][b], rank) for b, rank in found]
            out[self.todo[j].name] = LayerStats(
                median=median_of(picked, total.valid),
                min=float(total.min),
                max=float(total.max),
                valid_count=int(total.valid),
                nodata_count=int(total.nodata),
            )
        if missed:  # the guide's band missed the median: these layers are read again, apart
            again = [self.todo[j] for j in missed]
            log.info("the median of %s needs another read", ", ".join(la.name for la in again))
            out |= histogram_stats(again, self.prep.grid, self.executor, self.token + "/again")
        for j, layer in enumerate(self.todo):
            out[layer.name].hints = self.summaries[j].hints(layer.dtype) if self.summaries else []
        return out

    def _select(self, where: dict[int, list[tuple[int, int]]]) -> dict[int, dict[int, np.ndarray]]:
        """The low-bit counts of every median's bin, from the kept keys of the workers that
        hold them; a worker that is gone has its items counted again elsewhere first."""
        for _ in range(LOST_RETRIES + 1):
            self._recount_lost()
            holders = sorted(set(self.owner.values()))
            items = []
            for j, found in where.items():
                bins = tuple(sorted({b for b, _ in found}))
                for holder in holders:
                    accepted = np.array(self._accepted(holder, j), dtype=np.int64)
                    if accepted.size:
                        items.append((holder, j, bins, accepted))
            lows = {
                j: {b: np.zeros(1 << 16, np.int64) for b, _ in found} for j, found in where.items()
            }
            job = SelectJob(self.folder, self.token)
            pin = (lambda item: item[0]) if self.executor.pins else None
            try:
                for (_, j, _, _), got in self.executor.run(job, items, pin):
                    for b, counts in got.items():
                        lows[j][b] += counts
            except WorkerLost as lost:
                log.warning("dask engine: worker %s is gone; counting its part again", lost.worker)
                continue
            return lows
        raise InputError("pass 1: Dask workers kept going away; the statistics cannot be finished")

    def _accepted(self, holder: str, j: int) -> list[int]:
        return [
            item
            for item, worker in self.owner.items()
            if worker == holder
            and (self.recount[item][0] == "window" or self.recount[item][1][1] == j)
        ]

    def _recount_lost(self) -> None:
        """Items whose kept keys are on workers that are gone, counted again."""
        alive = self.executor.alive()
        if alive is None:
            return
        lost = [item for item, worker in self.owner.items() if worker not in alive]
        if not lost:
            return
        windows = [(i, self.recount[i][1]) for i in lost if self.recount[i][0] == "window"]
        tasks = [self.recount[i][1] for i in lost if self.recount[i][0] == "task"]
        gone = sorted({self.owner[i] for i in lost})
        log.warning(
            "worker(s) %s gone with the keys they kept: counting %d item(s) again",
            ", ".join(gone),
            len(lost),
        )
        for worker in gone:
            del self.by_worker[worker]
        for i in lost:
            del self.owner[i]
        if windows:
            job = RecountJob(tuple(self.prep.layers), self.spec)
            for (item, key), got in self.executor.run(job, windows):
                self.accept(item, got, window=key)
        if tasks:
            for (task, j, _), got in self.executor.run(
                CountJob(tuple(self.todo), self.spec), tasks
            ):
                self.accept(task, got, layers=[j])

    def _done(self, fresh: dict[str, LayerStats]) -> dict[str, LayerStats]:
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
            for hint in s.hints or ():
                log.warning("layer '%s': %s", layer.name, hint)
        return {layer.name: self.found[layer.name] for layer in self.prep.layers}


def _against(counts: LayerCounts, band: Band) -> LayerCounts:
    """A guide window's counts (every key's high bin, relative to bin 0) as counts against
    ``band``: the keys below it, and its bins relative to its base."""
    out = LayerCounts(counts.valid, counts.nodata, 0, counts.min, counts.max)
    if counts.bins is None:
        return out
    where, n = counts.bins
    out.below = int(n[where < band.first].sum())
    inside = (where >= band.first) & (where <= band.last)
    if inside.any():
        out.bins = ((where[inside] - band.base).astype(np.int32), n[inside])
    return out


def _dense_as_sparse(counts: LayerCounts) -> LayerCounts:
    """A total's dense bins as a worker's sparse ones, to merge into another total."""
    out = LayerCounts(counts.valid, counts.nodata, counts.below, counts.min, counts.max)
    if isinstance(counts.bins, np.ndarray):
        where = np.flatnonzero(counts.bins)
        out.bins = (where, counts.bins[where])
    return out


def unknown_medians(n: int) -> np.ndarray:
    """Medians for a pass 2 that fills no pixel yet: NaN, so that a fill, were there one,
    could never pass unnoticed."""
    return np.full(n, np.nan, dtype=np.float32)


def window_item(index: int, window: Window) -> tuple[int, WindowKey]:
    return index, window_key(window)
