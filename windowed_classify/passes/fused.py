"""Pass 1 counted from pass 2's own reads: one read of the stack where one read is enough.

With ``nodata.threshold: 0`` no unmasked pixel has a nodata value, so pass 2 never needs a
median: it can start at once, and every window it reads is also counted for the statistics
(the report and the statistics cache still want exact medians). Values are compared by
their order-preserving keys (float_keys.py), in three steps:

1. guide: a spread sample of each layer's blocks (about a million values) is counted by the
   keys' high 16 bits, to find a band of them around its median: ``BAND`` of the values on
   each side, in rank, which a sample of a few dozen blocks misses by a few percent at most;
2. pass 2: each worker counts every window it reads, all layers: valid and nodata values,
   min, max, how many keys lie below the band, and it appends the keys inside the band to a
   spill file per layer beside the output (about 2 x BAND of the values, 4 bytes each);
3. finish: the median's rank(s) minus the count below the band index the spilled keys;
   ``np.partition`` finds them exactly. A layer whose median lies outside its band (the guide
   was wrong) is counted again on its own, by pass 1's standalone plan.

When pass 2 needs the medians first (``nodata.threshold`` > 0), the local engines count the
same way before it (``count_apart``: step 2 by pass-1 tasks, a layer's blocks each): one read
of the stack after the guide, where the standalone plan (passes.stats) reads the scouts
whose range holds the median twice and counts every value in a 65,536-bin histogram.

Per value that is two float comparisons and a count; only the values inside the band become
keys (the band's edges as floats select exactly the keys of its bins: see ``float_band``).
Memory per layer is a few counters, and at the end one layer's spill per worker at a time.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from ..errors import InputError, OutputError
from ..inputs.grid import Grid
from ..inputs.layers import Layer
from ..inputs.windows import WindowKey
from .median import BINS, from_key, to_keys
from .stats import (
    HOLD_PIXELS,
    HOLD_WINDOWS,
    TASK_PIXELS,
    LayerStats,
    Runner,
    Task,
    compute_stats,
    in_band,
    layer_blocks,
    sample_order,
)

BAND = 0.15  # rank on each side of the guide's median whose keys are spilled
NEG_INF_KEY, POS_INF_KEY = (int(k) for k in to_keys(np.array([-np.inf, np.inf], np.float32)))


class _Layer:
    """One layer's running counts (guarded by ``lock``: workers add concurrently)."""

    def __init__(self, spill: Path):
        self.lock = threading.Lock()
        self.band = (0, -1)  # (first, last) high bin whose keys are spilled
        self.edges = (np.float32(np.inf), np.float32(-np.inf))  # the band as floats
        self.spill_path = spill
        self.spill = open(spill, "wb")  # noqa: SIM115 - closed in finish/close
        self.valid = self.nodata = self.below = self.spilled = 0
        self.lo, self.hi = np.inf, -np.inf

    def set_band(self, first: int, last: int) -> None:
        self.band = (first, last)
        self.edges = float_band(first, last) if last >= first else self.edges

    def add(
        self, near: np.ndarray, below: int, valid: int, nodata: int, lo: float, hi: float
    ) -> None:
        """Add what some values of this layer counted (any thread)."""
        with self.lock:
            if near.size:
                try:
                    self.spill.write(near.tobytes())
                except OSError as exc:
                    raise OutputError(
                        f"cannot write the statistics spill {self.spill_path}: {exc}; is the "
                        "disk full?"
                    ) from None
            self.spilled += near.size
            self.below += below
            self.valid += valid
            self.nodata += nodata
            self.lo, self.hi = min(self.lo, lo), max(self.hi, hi)


class FusedStats:
    """Exact statistics of ``layers`` counted from pass 2's windows (``add``), guided by a
    small sample read first (``guide``), finished from a spill of the keys near the median
    (``finish``). ``add`` is called from worker threads; ``close`` removes the spill files."""

    def __init__(
        self,
        layers: Sequence[Layer],
        grid: Grid,
        rows: Sequence[int] | None = None,
        spill_dir: Path | None = None,
    ):
        self.layers = list(layers)
        # the row of each layer in the windows pass 2 reads (the model's layers, all of them)
        self.rows = list(rows) if rows is not None else list(range(len(self.layers)))
        self.grid = grid
        try:
            self.folder = Path(tempfile.mkdtemp(prefix=".statistics.", dir=spill_dir))
        except OSError as exc:
            raise OutputError(
                f"cannot make a statistics spill folder in {spill_dir}: {exc}"
            ) from None
        self.counts = [_Layer(self.folder / f"{j}.keys") for j in range(len(self.layers))]
        self.by_name = {layer.name: c for layer, c in zip(self.layers, self.counts, strict=True)}

    # ------------------------------------------------------------------ 1. guide

    def guide(self, run: Runner, progress: Callable[[int], object] | None = None) -> None:
        """Each layer's band of high bins, from a spread sample of its blocks."""
        tasks = []
        for layer in self.layers:
            blocks = layer_blocks(self.grid, layer)
            per = blocks[0][2] * blocks[0][3]
            picks = grid_sample(blocks, sample_order(len(blocks), HOLD_WINDOWS, HOLD_PIXELS, per))
            tasks.append(Task(layer, [blocks[i] for i in picks], picks))
        queue = list(reversed(tasks))
        for task, counts in run(lambda: queue.pop() if queue else None):
            assert task.layer is not None and counts.high is not None
            if progress is not None:
                progress(counts.pixels)
            high = np.zeros(BINS, dtype=np.int64)
            high[counts.high[0].astype(np.int64)] = counts.high[1]
            self.by_name[task.layer.name].set_band(*band(high))

    # ------------------------------------------------------------------ 2. pass 2

    def add(self, window: Window, values: np.ndarray, invalid: np.ndarray) -> None:
        """Count one window of pass 2: ``values`` and ``invalid`` are the reader's (layers,
        pixels) arrays (worker threads call this)."""
        for row, c in zip(self.rows, self.counts, strict=True):
            bad = invalid[row]
            n_bad = int(np.count_nonzero(bad))
            valid = values[row][~bad] if n_bad else values[row]
            if not valid.size:
                c.add(np.empty(0, np.uint32), 0, 0, n_bad, np.inf, -np.inf)
                continue
            below, near = in_band(valid, c.edges)
            c.add(near, below, valid.size, n_bad, float(valid.min()), float(valid.max()))

    # ------------------------------------------------------------- 2'. on its own

    def count_apart(self, run: Runner, progress: Callable[[int], object] | None = None) -> None:
        """Every block of every layer counted against its band by ``run``'s workers, as pass 2
        would count them: pass 1 on its own (a pass 2 that needs the medians first), one read
        of the stack after the guide."""
        tasks: deque[Task] = deque()
        for layer, c in zip(self.layers, self.counts, strict=True):
            blocks = layer_blocks(self.grid, layer)
            per = max(1, TASK_PIXELS // (blocks[0][2] * blocks[0][3]))
            for s in range(0, len(blocks), per):
                part = list(range(s, min(s + per, len(blocks))))
                tasks.append(Task(layer, [blocks[i] for i in part], part, edges=c.edges))
        for task, counts in run(lambda: tasks.popleft() if tasks else None):
            assert task.layer is not None and counts.near is not None
            if progress is not None:
                progress(counts.pixels)
            self.by_name[task.layer.name].add(
                counts.near, counts.below, counts.valid, counts.nodata, counts.min, counts.max
            )

    # ------------------------------------------------------------------ 3. finish

    def finish(self, run: Runner, threads: int = 1) -> dict[str, LayerStats]:
        """Exact statistics: the median from the spill where the band holds it (``threads``
        layers at a time: np.partition releases the GIL); a layer whose median the band
        missed is counted again on its own."""
        out: dict[str, LayerStats] = {}
        again: list[Layer] = []
        ready: list[tuple[Layer, _Layer, list[int]]] = []
        for layer, c in zip(self.layers, self.counts, strict=True):
            c.spill.close()
            if c.valid == 0:
                raise InputError(
                    f"layer '{layer.name}' ({layer.path}) has no valid pixel: every value is nodata"
                )
            ranks = [(c.valid - 1) // 2 - c.below, c.valid // 2 - c.below]
            if ranks[0] >= 0 and ranks[1] < c.spilled:
                ready.append((layer, c, ranks))
            else:
                again.append(layer)

        def middle(item: tuple[Layer, _Layer, list[int]]) -> tuple[Layer, _Layer, list[int]]:
            layer, c, ranks = item
            keys = np.fromfile(c.spill_path, dtype=np.uint32)
            c.spill_path.unlink()  # ``threads`` layers' spills in memory at a time
            keys.partition(ranks)  # in place: no copy of the spill
            return layer, c, [int(keys[r]) for r in ranks]

        with ThreadPoolExecutor(max(1, threads)) as pool:
            for layer, c, keys in pool.map(middle, ready):
                values = [from_key(k) for k in keys]
                # pandas ends with np.mean of the middle value(s) in float64 (+0.0 for -0.0)
                middle_values = values[:1] if c.valid % 2 else values
                median = np.mean(np.asarray(middle_values, dtype=np.float64))
                out[layer.name] = LayerStats(
                    median=float(np.float32(median)),
                    min=float(c.lo),
                    max=float(c.hi),
                    valid_count=int(c.valid),
                    nodata_count=int(c.nodata),
                )
        if again:  # the guide's band missed the median: these layers are read again, apart
            for name, stats in compute_stats(again, self.grid, run).items():
                stats.second_read = True
                out[name] = stats
        self.close()
        return {layer.name: out[layer.name] for layer in self.layers}

    def close(self) -> None:
        """Remove the spill files (after finish, or when the run stops)."""
        for c in self.counts:
            if not c.spill.closed:
                c.spill.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def grid_sample(blocks: Sequence[WindowKey], spread: Sequence[int]) -> list[int]:
    """As many blocks as ``spread`` picks, on a regular grid of block rows and columns.

    ``spread`` is evenly spaced in the row-major block list, which on a tiled layer is a
    diagonal line across it: on smooth fields (covariates are) its median missed the layer's
    by up to 31% in rank (a 4000^2 stack, 16 blocks of 20 layers), a 4 x 4 grid of the same
    number of blocks by at most 12%.
    """
    k = len(spread)
    cols = sorted({b[0] for b in blocks})
    rows = sorted({b[1] for b in blocks})
    if k >= len(blocks) or len(cols) == 1 or len(rows) == 1:
        return list(spread)
    nc = max(1, min(len(cols), k, round(np.sqrt(k * len(cols) / len(rows)))))
    nr = max(1, min(len(rows), k // nc))
    at = {(b[1], b[0]): i for i, b in enumerate(blocks)}
    picks = {
        at[(rows[int((r + 0.5) * len(rows) / nr)], cols[int((c + 0.5) * len(cols) / nc)])]
        for r in range(nr)
        for c in range(nc)
    }
    return sorted(picks)


def float_band(first: int, last: int) -> tuple[np.float32, np.float32]:
    """The float edges (low, high) of the keys in high bins ``first`` .. ``last``.

    For valid (non-NaN) values, ``low <= v <= high`` holds exactly for the keys inside the
    bins, but for one tie: -0.0 and +0.0 compare equal, so an edge at zero takes both zeros.
    Both stay consistent: what is spilled is still one contiguous run of keys, and what is
    counted below it is every key under that run. Keys past the infinities are NaN bit
    patterns, never valid: the edges stop at the infinities.
    """
    low = min(max(first << 16, NEG_INF_KEY), POS_INF_KEY)
    high = min(max((last << 16) | 0xFFFF, NEG_INF_KEY), POS_INF_KEY)
    return from_key(low), from_key(high)


def band(high: np.ndarray, side: float = BAND) -> tuple[int, int]:
    """(first, last) high bin holding ranks 0.5 - side .. 0.5 + side of a histogram."""
    n = int(high.sum())
    if n == 0:
        return 0, -1
    cum = np.cumsum(high)
    first = int(np.searchsorted(cum, max(0, int((0.5 - side) * n)), side="right"))
    last = int(np.searchsorted(cum, min(n - 1, int((0.5 + side) * n)), side="right"))
    return first, last
