"""Pass 1 in pieces: statistics counted over groups of windows anywhere, merged exactly.

A distributed engine cannot stream a layer through one counter, so the streaming median of
stats.py is split into steps whose results add up: a task counts some windows of one layer
(``count_windows``: valid/nodata counts, min, max, each window's key-bin range, the keys'
high-16-bit histogram and full keys inside chosen bins, sent sparse), and ``LayerPlan``
merges those counts on the client. Counting is exact, so the median is the one stats.py
finds, bit for bit. The plan follows the same three steps as stats.layer_stats:

1. scout: a spread quarter of the windows, counted by high bits only;
2. rest: the other windows, counted by high bits and in full inside the candidate bins that
   the scouts' histogram points at;
3. finish: only the windows whose value range can hold the median's bin(s) are read again,
   the scouts for every median bin, the rest only for a bin the candidates missed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from rasterio.windows import Window

from ..errors import InputError
from ..inputs.grid import Grid
from ..inputs.layers import Layer
from ..inputs.reader import iter_layer_values
from ..inputs.windows import WindowKey, layer_windows, window_key
from .stats import (
    BINS,
    SAMPLE_WINDOWS,
    SCOUT_FRACTION,
    LayerStats,
    MedianCounter,
    _batched,
    bin_range,
    choose_candidates,
    sample_order,
    to_keys,
)

TASK_PIXELS = 1 << 22  # about 4 million pixels (16 MB of float32) read by one task

@dataclass
class Counts:
    """What one task counted over some windows of one layer; every field adds up exactly."""

    indices: np.ndarray  # the windows' indices in the layer's window list (int64)
    high: tuple[np.ndarray, np.ndarray] | None = None  # (bins, counts) of the high 16 bits
    keys: tuple[np.ndarray, np.ndarray] = field(  # (full uint32 keys, counts) in chosen bins
        default_factory=lambda: (np.empty(0, np.uint32), np.empty(0, np.int64))
    )
    ranges: np.ndarray | None = None  # (windows, 2) int32 high-bin range; (1, 0) if empty
    valid: int = 0
    nodata: int = 0
    min: float = np.inf
    max: float = -np.inf

    @property
    def pixels(self) -> int:
        return self.valid + self.nodata


def _sparse(counts: np.ndarray, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    where = np.flatnonzero(counts)
    return (where + offset).astype(np.uint32), counts[where].astype(np.int64)


def count_windows(
    layer: Layer,
    windows: Sequence[WindowKey],
    indices: Sequence[int],
    run: tuple[int, int] | None = None,
    bins: Sequence[int] | None = None,
) -> Counts:
    """Count ``windows`` of ``layer``.

    A first read (``bins`` None) counts everything: totals, ranges, the high-bit histogram and
    full keys inside the ``run`` (first bin, count) of candidate bins. A later read (``bins``
    given) counts only full keys inside those bins.
    """
    first_read = bins is None
    out = Counts(indices=np.asarray(indices, dtype=np.int64))
    if first_read:
        out.ranges = np.tile(np.array([1, 0], dtype=np.int32), (len(windows), 1))
    counter = MedianCounter(*(run or (0, 0))) if first_read else None
    seconds = {b: MedianCounter(b, 1) for b in (bins or ())}

    def values() -> Iterator[np.ndarray]:
        for j, data, n_invalid in iter_layer_values(layer, [Window(*w) for w in windows]):
            if first_read:
                assert out.ranges is not None
                out.nodata += n_invalid
                out.valid += data.size
                if data.size:
                    lo, hi = float(data.min()), float(data.max())
                    out.min, out.max = min(out.min, lo), max(out.max, hi)
                    out.ranges[j] = bin_range(lo, hi)
            yield data

    for keys in _batched(to_keys(v) for v in values()):
        if counter is not None:
            counter.add(keys)
        for second in seconds.values():
            second.add(keys, count_high=False)

    parts: list[tuple[np.ndarray, np.ndarray]] = []
    if counter is not None:
        out.high = _sparse(counter.high)
        if counter.n:
            parts.append(_sparse(counter.low, counter.first << 16))
    parts += [_sparse(s.low, b << 16) for b, s in seconds.items()]
    if parts:
        out.keys = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return out


@dataclass
class Task:
    """One piece of pass-1 work: which windows of which layer, counted how."""

    layer: Layer
    windows: list[WindowKey]
    indices: list[int]
    run: tuple[int, int] | None = None
    bins: list[int] | None = None

    @property
    def first_read(self) -> bool:
        return self.bins is None


class LayerPlan:
    """The client's side for one layer: hands out tasks stage by stage, merges their counts.

    Stages: scout -> rest -> finish -> done. ``next_tasks()`` gives the current stage's tasks
    once the previous stage's counts are all in (an empty list means wait for more counts,
    unless ``done``).
    """

    def __init__(self, layer: Layer, grid: Grid, task_pixels: int = TASK_PIXELS):
        self.layer = layer
        self.windows = [window_key(w) for w in layer_windows(grid, layer.block_shape)]
        n = len(self.windows)
        self.per_task = max(1, task_pixels // max(self.windows[0][2] * self.windows[0][3], 1))
        self.scouts = sample_order(n, max(SAMPLE_WINDOWS, n // SCOUT_FRACTION), n, 1)
        spread = set(self.scouts)
        self.rest = [i for i in range(n) if i not in spread]
        self.ranges = np.tile(np.array([1, 0], dtype=np.int32), (n, 1))
        self.scouted = np.zeros(BINS, dtype=np.int64)
        self.counter: MedianCounter | None = None
        self.seconds: dict[int, np.ndarray] = {}
        self.bins: list[int] = []
        self.missing: list[int] = []
        self.totals = {"valid": 0, "nodata": 0, "min": np.inf, "max": -np.inf}
        self.stage = "new"
        self.outstanding = 0

    @property
    def done(self) -> bool:
        return self.stage == "done"

    def _tasks(self, indices: Sequence[int], **how) -> list[Task]:
        out = []
        for s in range(0, len(indices), self.per_task):
            part = list(indices[s : s + self.per_task])
            out.append(Task(self.layer, [self.windows[i] for i in part], part, **how))
        self.outstanding += len(out)
        return out

    def _holding(self, indices: Sequence[int], bins: Sequence[int]) -> list[int]:
        """The windows whose value range can hold a key in one of ``bins``."""
        r = self.ranges[np.asarray(indices, dtype=np.int64)]
        hold = np.zeros(len(indices), dtype=bool)
        for b in bins:
            hold |= (r[:, 0] <= b) & (b <= r[:, 1])
        return [i for i, h in zip(indices, hold, strict=True) if h]

    def next_tasks(self) -> list[Task]:
        """Advance through every stage whose inputs are complete; the tasks of the new one."""
        while self.outstanding == 0 and not self.done:
            tasks = self._advance()
            if tasks:
                return tasks
        return []

    def _advance(self) -> list[Task]:
        if self.stage == "new":
            self.stage = "scout"
            return self._tasks(self.scouts)
        if self.stage == "scout":
            self.stage = "rest"
            run = choose_candidates(self.scouted)
            self.counter = MedianCounter(*run)
            self.counter.high += self.scouted
            return self._tasks(self.rest, run=run)
        assert self.counter is not None
        if self.stage == "rest":
            self.stage = "finish"
            if self.counter.count == 0:
                raise InputError(
                    f"layer '{self.layer.name}' ({self.layer.path}) has no valid pixel: "
                    "every value is nodata"
                )
            self.bins = sorted({b for b, _ in self.counter.middle_bins()})
            self.missing = self.counter.missing()
            self.seconds = {b: np.zeros(BINS, dtype=np.int64) for b in self.bins}
            # Scouts were counted by high bits only: all median bins; the rest: missed ones.
            scouts = self._tasks(self._holding(self.scouts, self.bins), bins=self.bins)
            return scouts + self._tasks(self._holding(self.rest, self.missing), bins=self.missing)
        if self.stage == "finish":
            for b in self.bins:
                inside = self.counter.low_counts(b)
                if inside is None:
                    self.counter.extra[b] = self.seconds[b]
                else:  # a candidate bin: add the scouts' counts to the rest's
                    inside += self.seconds[b]
            self.stage = "done"
        return []

    def merge(self, task: Task, counts: Counts) -> None:
        """Add one task's counts (any order within a stage)."""
        self.outstanding -= 1
        if task.first_read:
            assert counts.high is not None and counts.ranges is not None
            self.ranges[counts.indices] = counts.ranges
            t = self.totals
            t["valid"] += counts.valid
            t["nodata"] += counts.nodata
            t["min"], t["max"] = min(t["min"], counts.min), max(t["max"], counts.max)
            high_bins, high_counts = counts.high
            target = self.scouted if self.stage == "scout" else self.counter.high  # type: ignore[union-attr]
            target[high_bins.astype(np.int64)] += high_counts
        keys, n = counts.keys
        if not keys.size:
            return
        if task.first_read:  # keys inside the candidate run
            assert self.counter is not None
            self.counter.low[(keys - self.counter.base).astype(np.int64)] += n
        else:
            for b, low in self.seconds.items():
                inside = (keys >> 16) == b
                low[(keys[inside] & 0xFFFF).astype(np.int64)] += n[inside]

    def result(self) -> LayerStats:
        assert self.done and self.counter is not None
        t = self.totals
        return LayerStats(
            median=float(self.counter.median()),
            min=t["min"],
            max=t["max"],
            valid_count=int(t["valid"]),
            nodata_count=int(t["nodata"]),
            second_read=bool(self.missing),
        )
