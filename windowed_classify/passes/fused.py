"""Pass 1 counted from pass 2's own reads: one read of the stack where one read is enough.

With ``nodata.threshold: 0`` no unmasked pixel has a nodata value, so pass 2 never needs a
median: it can start at once, and every window it reads is also counted for the statistics
(the report and the statistics cache still want exact medians). The counting is that of
passes/median.py (order-preserving keys, their high 16 bits counted for every value, the
low bits only where the median lies), in three steps:

1. guide: a spread sample of each layer's blocks (about a million values) is counted by high
   bits, to find a band of high bins around its median: ``BAND`` of the values on each side,
   in rank, which a sample of a few dozen blocks misses by a few percent at most;
2. pass 2: each worker counts every window it reads, all layers: high bits, totals, min,
   max, each window's bin range; the full keys inside the band are appended to a spill file
   per layer beside the output (about 2 x BAND of the stack's values, 4 bytes each);
3. finish: the exact high histogram gives the median's bin; inside the band its low bits are
   counted from the spill file; outside (the guide was wrong) only the windows whose value
   range can hold that bin are read again.

Memory per layer: the high histogram (512 KB) and a few buffers; the band is on disk, not in
memory, because with many layers (100 x 20 M pixels) even a tight band of counters would not
fit a laptop's budget.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from ..errors import InputError, OutputError
from ..inputs.grid import Grid
from ..inputs.layers import Layer
from ..inputs.windows import layer_windows, window_key
from .median import BINS, MedianCounter, bin_range, high_bins, to_keys
from .stats import HOLD_PIXELS, HOLD_WINDOWS, Counts, LayerStats, Task, sample_order

BAND = 0.12  # rank on each side of the guide's median whose keys are spilled
FLUSH = 1 << 18  # high bins pending before one bincount (a bincount writes all 65,536 bins)
READ = 1 << 22  # keys read back from a spill file at a time

Runner = Callable[[Callable[[], "Task | None"]], Iterator[tuple[Task, Counts]]]


class _Layer:
    """One layer's running counts (guarded by ``lock``: workers add concurrently)."""

    def __init__(self, spill: Path):
        self.lock = threading.Lock()
        self.high = np.zeros(BINS, dtype=np.int64)
        self.pending: list[np.ndarray] = []  # high bins (uint16) not yet counted
        self.pending_n = 0
        self.band = (0, -1)  # (first, last) high bin whose keys are spilled
        self.spill_path = spill
        self.spill = open(spill, "wb")  # noqa: SIM115 - closed in finish/close
        self.valid = self.nodata = 0
        self.lo, self.hi = np.inf, -np.inf

    def flush(self) -> None:
        if self.pending:
            bins = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
            self.high += np.bincount(bins, minlength=BINS)
            self.pending, self.pending_n = [], 0


class FusedStats:
    """Exact statistics of ``layers`` counted from pass 2's windows (``add``), guided by a
    small sample read first (``guide``), finished from a spill of the keys near the median
    (``finish``). ``add`` is called from worker threads; ``close`` removes the spill files."""

    def __init__(
        self,
        layers: Sequence[Layer],
        grid: Grid,
        windows: Sequence[Window],
        rows: Sequence[int] | None = None,
        spill_dir: Path | None = None,
    ):
        self.layers = list(layers)
        # the row of each layer in the windows pass 2 reads (the model's layers, all of them)
        self.rows = list(rows) if rows is not None else list(range(len(self.layers)))
        self.grid = grid
        self.windows = [window_key(w) for w in windows]
        self.index = {key: i for i, key in enumerate(self.windows)}
        self.ranges = np.tile(np.array([1, 0], dtype=np.int32),
                              (len(self.windows), len(self.layers), 1))  # fmt: skip
        try:
            self.folder = Path(tempfile.mkdtemp(prefix=".statistics.", dir=spill_dir))
        except OSError as exc:
            raise OutputError(
                f"cannot make a statistics spill folder in {spill_dir}: {exc}"
            ) from None
        self.counts = [_Layer(self.folder / f"{j}.keys") for j in range(len(self.layers))]
        self.missed: list[list[int]] = []

    # ------------------------------------------------------------------ 1. guide

    def guide(self, run: Runner, progress: Callable[[int], object] | None = None) -> None:
        """Each layer's band of high bins, from a spread sample of its blocks."""
        tasks = []
        for layer in self.layers:
            blocks = [window_key(w) for w in layer_windows(self.grid, layer.block_shape)]
            per = blocks[0][2] * blocks[0][3]
            picks = sample_order(len(blocks), HOLD_WINDOWS, HOLD_PIXELS, per)
            tasks.append(Task(layer, [blocks[i] for i in picks], picks))
        by_name = {layer.name: j for j, layer in enumerate(self.layers)}
        queue = list(reversed(tasks))
        for task, counts in run(lambda: queue.pop() if queue else None):
            assert task.layer is not None and counts.high is not None
            if progress is not None:
                progress(counts.pixels)
            high = np.zeros(BINS, dtype=np.int64)
            high[counts.high[0].astype(np.int64)] = counts.high[1]
            self.counts[by_name[task.layer.name]].band = band(high)

    # ------------------------------------------------------------------ 2. pass 2

    def add(self, window: Window, values: np.ndarray, invalid: np.ndarray) -> None:
        """Count one window of pass 2: ``values`` and ``invalid`` are the reader's (layers,
        pixels) arrays, in the order of ``layers`` (worker threads call this)."""
        w = self.index[window_key(window)]
        for j, (row, c) in enumerate(zip(self.rows, self.counts, strict=True)):
            bad = invalid[row]
            n_bad = int(np.count_nonzero(bad))
            valid = values[row][~bad] if n_bad else values[row]
            keys = to_keys(valid)
            bins = high_bins(keys)
            first, last = c.band
            near = None
            if last >= first:  # uint16 arithmetic wraps: one comparison tests first..last
                near = keys[(bins - np.uint16(first)) <= np.uint16(last - first)]
            if valid.size:
                lo, hi = float(valid.min()), float(valid.max())
                self.ranges[w, j] = bin_range(lo, hi)
            with c.lock:
                c.pending.append(bins.copy())  # 2 bytes a value, not the 4 of the keys
                c.pending_n += bins.size
                if c.pending_n >= FLUSH:
                    c.flush()
                if near is not None and near.size:
                    try:
                        c.spill.write(near.tobytes())
                    except OSError as exc:
                        raise OutputError(
                            f"cannot write the statistics spill {c.spill_path}: {exc}; is the "
                            "disk full?"
                        ) from None
                c.valid += valid.size
                c.nodata += n_bad
                if valid.size:
                    c.lo, c.hi = min(c.lo, lo), max(c.hi, hi)

    # ------------------------------------------------------------------ 3. finish

    def finish(self, run: Runner) -> dict[str, LayerStats]:
        """Exact statistics: the median's bin counted from the spill inside the band; outside
        it, from the windows whose value range can hold that bin, read again."""
        counters: list[MedianCounter] = []
        queue: list[Task] = []
        self.missed = []
        for j, (layer, c) in enumerate(zip(self.layers, self.counts, strict=True)):
            c.flush()
            c.spill.close()
            counter = MedianCounter()
            counter.high = c.high
            if counter.count == 0:
                raise InputError(
                    f"layer '{layer.name}' ({layer.path}) has no valid pixel: every value is "
                    "nodata"
                )
            bins = sorted({b for b, _ in counter.middle_bins()})
            first, last = c.band
            inside = [b for b in bins if first <= b <= last]
            for b, low in zip(inside, self._spilled(c.spill_path, inside), strict=True):
                counter.extra[b] = low
            missing = [b for b in bins if b not in inside]
            self.missed.append(missing)
            counters.append(counter)
            if missing:
                r = self.ranges[:, j]
                hold = np.zeros(len(self.windows), dtype=bool)
                for b in missing:
                    hold |= (r[:, 0] <= b) & (b <= r[:, 1])
                    counter.extra[b] = np.zeros(BINS, dtype=np.int64)
                picks = [int(i) for i in np.flatnonzero(hold)]
                queue.append(Task(layer, [self.windows[i] for i in picks], picks, bins=missing))
        by_name = {layer.name: j for j, layer in enumerate(self.layers)}
        for task, counts in run(lambda: queue.pop() if queue else None):
            assert task.layer is not None
            counter = counters[by_name[task.layer.name]]
            keys, n = counts.keys
            for b in task.bins or ():
                inside = (keys >> 16) == b
                counter.extra[b][(keys[inside] & 0xFFFF).astype(np.int64)] += n[inside]
        self.close()
        return {
            layer.name: LayerStats(
                median=float(counter.median()),
                min=float(c.lo),
                max=float(c.hi),
                valid_count=int(c.valid),
                nodata_count=int(c.nodata),
                second_read=bool(missed),
            )
            for layer, c, counter, missed in zip(self.layers, self.counts, counters, self.missed,
                                                 strict=True)  # fmt: skip
        }

    @staticmethod
    def _spilled(path: Path, bins: Sequence[int]) -> list[np.ndarray]:
        """Low-bit counts of the spilled keys in each of ``bins`` (one read of the file)."""
        lows = [np.zeros(BINS, dtype=np.int64) for _ in bins]
        if not bins:
            return lows
        with open(path, "rb") as f:
            while chunk := f.read(READ * 4):
                keys = np.frombuffer(chunk, dtype=np.uint32)
                high = keys >> 16
                for b, low in zip(bins, lows, strict=True):
                    low += np.bincount(keys[high == b] & 0xFFFF, minlength=BINS)
        return lows

    def close(self) -> None:
        """Remove the spill files (after finish, or when the run stops)."""
        for c in self.counts:
            if not c.spill.closed:
                c.spill.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def band(high: np.ndarray, side: float = BAND) -> tuple[int, int]:
    """(first, last) high bin holding ranks 0.5 - side .. 0.5 + side of a histogram."""
    n = int(high.sum())
    if n == 0:
        return 0, -1
    cum = np.cumsum(high)
    first = int(np.searchsorted(cum, max(0, int((0.5 - side) * n)), side="right"))
    last = int(np.searchsorted(cum, min(n - 1, int((0.5 + side) * n)), side="right"))
    return first, last
