"""Pass 1 counted from pass 2's own reads: one read of the stack where one read is enough.

With ``nodata.threshold: 0`` no unmasked pixel has a nodata value, so pass 2 never needs a
median: it can start at once, and every window it reads is also counted for the statistics
(the report and the statistics cache still want exact medians). The counting is that of
passes/median.py, in three steps:

1. guide: a spread sample of each layer's blocks (about a million values, 5% of a 20 M-pixel
   layer) is counted by high bits to choose each layer's candidate bins; it is only a guide
   and is not counted in the statistics;
2. pass 2: each worker counts every window it reads, all layers, into shared per-layer
   counters (high bits, full keys inside the candidate bins, totals, min, max, and each
   window's bin range), under one lock per layer;
3. finish: a layer whose middle value(s) fall outside its candidates has only the windows
   whose value range can hold that bin read again, for that bin.

The candidate bins cost 256 KB each per layer, so their number per layer shrinks with the
layer count (``CANDIDATE_BYTES`` in all); a miss costs a partial read, never exactness.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence

import numpy as np
from rasterio.windows import Window

from ..errors import InputError
from ..inputs.grid import Grid
from ..inputs.layers import Layer
from ..inputs.windows import layer_windows, window_key
from .median import BINS, MAX_CANDIDATES, MedianCounter, bin_range, choose_candidates, to_keys
from .stats import HOLD_PIXELS, HOLD_WINDOWS, Counts, LayerStats, Task, sample_order

CANDIDATE_BYTES = 128 << 20  # full-key counters of all layers' candidate bins together

Runner = Callable[[Callable[[], "Task | None"]], Iterator[tuple[Task, Counts]]]


def candidate_bins(n_layers: int, itemsize: int) -> int:
    """Candidate bins per layer within CANDIDATE_BYTES (at least 2, at most MAX_CANDIDATES)."""
    per_bin = BINS * itemsize
    return int(np.clip(CANDIDATE_BYTES // max(n_layers * per_bin, 1), 2, MAX_CANDIDATES))


class FusedStats:
    """Exact statistics of ``layers`` counted from pass 2's windows (``add``), guided by a
    small sample read first (``guide``) and finished by reading again only what a missed
    median bin needs (``finish``). ``add`` is called from worker threads."""

    def __init__(
        self,
        layers: Sequence[Layer],
        grid: Grid,
        windows: Sequence[Window],
        rows: Sequence[int] | None = None,
    ):
        self.layers = list(layers)
        # the row of each layer in the windows pass 2 reads (the model's layers, all of them)
        self.rows = list(rows) if rows is not None else list(range(len(self.layers)))
        self.grid = grid
        self.windows = [window_key(w) for w in windows]
        self.index = {key: i for i, key in enumerate(self.windows)}
        # a key can be counted at most once per pixel: int32 while the grid allows it
        self.dtype = np.int32 if grid.pixels < 2**31 else np.int64
        self.bins = candidate_bins(len(self.layers), np.dtype(self.dtype).itemsize)
        self.counters: list[MedianCounter] = []
        self.ranges = np.tile(np.array([1, 0], dtype=np.int32), (len(self.windows),
                                                                 len(self.layers), 1))  # fmt: skip
        self.totals = np.zeros((len(self.layers), 2), dtype=np.int64)  # valid, nodata
        self.extremes = np.tile(np.array([np.inf, -np.inf]), (len(self.layers), 1))
        self.locks = [threading.Lock() for _ in self.layers]
        self.missed: list[list[int]] = []

    # ------------------------------------------------------------------ 1. guide

    def guide(self, run: Runner, progress: Callable[[int], object] | None = None) -> None:
        """Choose each layer's candidate bins from a spread sample of its blocks."""
        tasks = []
        for layer in self.layers:
            blocks = [window_key(w) for w in layer_windows(self.grid, layer.block_shape)]
            per = blocks[0][2] * blocks[0][3]
            picks = sample_order(len(blocks), HOLD_WINDOWS, HOLD_PIXELS, per)
            tasks.append(Task(layer, [blocks[i] for i in picks], picks))
        guides: dict[str, np.ndarray] = {}
        queue = list(reversed(tasks))
        for task, counts in run(lambda: queue.pop() if queue else None):
            assert task.layer is not None and counts.high is not None
            if progress is not None:
                progress(counts.pixels)
            high = np.zeros(BINS, dtype=np.int64)
            high[counts.high[0].astype(np.int64)] = counts.high[1]
            guides[task.layer.name] = high
        for layer in self.layers:
            first, n = choose_candidates(guides[layer.name], self.bins)
            self.counters.append(MedianCounter(first, n, dtype=self.dtype))

    # ------------------------------------------------------------------ 2. pass 2

    def add(self, window: Window, values: np.ndarray, invalid: np.ndarray) -> None:
        """Count one window of pass 2: ``values`` and ``invalid`` are the reader's (layers,
        pixels) arrays, in the order of ``layers`` (worker threads call this)."""
        w = self.index[window_key(window)]
        for j, (row, counter) in enumerate(zip(self.rows, self.counters, strict=True)):
            bad = invalid[row]
            n_bad = int(np.count_nonzero(bad))
            valid = values[row][~bad] if n_bad else values[row]
            keys = to_keys(valid)
            high = np.bincount(keys >> 16, minlength=BINS)
            low = counter.counted(keys) if counter.n else None
            lo, hi = (float(valid.min()), float(valid.max())) if valid.size else (np.inf, -np.inf)
            if valid.size:
                self.ranges[w, j] = bin_range(lo, hi)
            with self.locks[j]:
                counter.high += high
                if low is not None:
                    counter.add_low(low)
                self.totals[j] += (valid.size, n_bad)
                self.extremes[j] = (min(self.extremes[j, 0], lo), max(self.extremes[j, 1], hi))

    # ------------------------------------------------------------------ 3. finish

    def finish(self, run: Runner) -> dict[str, LayerStats]:
        """Exact statistics; only a missed median bin is read again, in the windows that can
        hold it."""
        queue: list[Task] = []
        seconds: dict[tuple[int, int], np.ndarray] = {}
        self.missed = []
        for j, (layer, counter) in enumerate(zip(self.layers, self.counters, strict=True)):
            if counter.count == 0:
                raise InputError(
                    f"layer '{layer.name}' ({layer.path}) has no valid pixel: every value is "
                    "nodata"
                )
            missing = counter.missing()
            self.missed.append(missing)
            if not missing:
                continue
            r = self.ranges[:, j]
            hold = np.zeros(len(self.windows), dtype=bool)
            for b in missing:
                hold |= (r[:, 0] <= b) & (b <= r[:, 1])
                seconds[(j, b)] = np.zeros(BINS, dtype=np.int64)
            picks = [int(i) for i in np.flatnonzero(hold)]
            queue.append(Task(layer, [self.windows[i] for i in picks], picks, bins=missing))
        by_layer = {layer.name: j for j, layer in enumerate(self.layers)}
        for task, counts in run(lambda: queue.pop() if queue else None):
            assert task.layer is not None
            j = by_layer[task.layer.name]
            keys, n = counts.keys
            for b in task.bins or ():
                inside = (keys >> 16) == b
                seconds[(j, b)][(keys[inside] & 0xFFFF).astype(np.int64)] += n[inside]
        out = {}
        for j, (layer, counter) in enumerate(zip(self.layers, self.counters, strict=True)):
            for b in self.missed[j]:
                counter.extra[b] = seconds[(j, b)]
            lo, hi = self.extremes[j]
            out[layer.name] = LayerStats(
                median=float(counter.median()),
                min=float(lo),
                max=float(hi),
                valid_count=int(self.totals[j, 0]),
                nodata_count=int(self.totals[j, 1]),
                second_read=bool(self.missed[j]),
            )
        return out
