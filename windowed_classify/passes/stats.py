"""Pass 1: exact per-layer median, min, max and counts, as counts that add up exactly.

One algorithm for every engine. A layer's windows are counted by tasks (groups of windows,
any order, on any worker: a thread here or a Dask worker elsewhere), and ``LayerPlan`` merges
their ``Counts`` in stages:

1. scout: a spread quarter of the windows, counted by high bits only, except a small spread
   "held" sample (about a million values) whose full keys come back too;
2. rest: the other windows, counted by high bits and in full inside the candidate bins that
   the scouts' histogram points at (the held keys inside them are added);
3. finish: only the windows whose value range can hold the median's bin(s) are read again:
   the scouts for every median bin, the rest only for a bin the candidates missed (the held
   keys need no second read).

When the candidates hold the median (the common case) a layer is read once, plus the scouts
that can hold its bin. Counting is exact, so the order tasks finish in does not matter.

This plan is pass 1 on Dask, and for a layer whose median the guide's band missed. The local
engines count against a band of keys instead (passes.fused: a guide, then one read, a band
task per group of blocks, ``count_band``); it needs every task's keys near the median back
in this process, which suits local workers, not a cluster's.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from rasterio.windows import Window

from ..errors import InputError
from ..inputs.grid import Grid
from ..inputs.layers import Layer
from ..inputs.reader import iter_layer_values
from ..inputs.windows import WindowKey, layer_windows, window_key
from .median import (
    BINS,
    MedianCounter,
    batched,
    bin_range,
    choose_candidates,
    sparse,
    to_keys,
)

log = logging.getLogger(__name__)

TASK_PIXELS = 1 << 22  # about 4 million pixels (16 MB of float32) read by one task
HOLD_PIXELS = 1 << 20  # about a million values whose full keys are kept from the first read
HOLD_WINDOWS = 64
SCOUT_FRACTION = 4  # a quarter of the windows, spread out, choose the candidate bins


@dataclass
class LayerStats:
    median: float
    min: float | None
    max: float | None
    valid_count: int
    nodata_count: int
    second_read: bool = False
    hints: list[str] | None = None  # values that look like undeclared nodata (inputs.hints)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Counts:
    """What one task counted over some windows of one layer; every field adds up exactly."""

    indices: np.ndarray  # the windows' indices in the layer's window list (int64)
    high: tuple[np.ndarray, np.ndarray] | None = None  # (bins, counts) of the high 16 bits
    keys: tuple[np.ndarray, np.ndarray] = field(  # (distinct full uint32 keys, counts)
        default_factory=lambda: (np.empty(0, np.uint32), np.empty(0, np.int64))
    )
    ranges: np.ndarray | None = None  # (windows, 2) int32 high-bin range; (1, 0) if empty
    held: np.ndarray | None = None  # a held task's every full key (uint32), as read
    below: int = 0  # a band task's values below the band
    near: np.ndarray | None = None  # a band task's keys inside the band (uint32), as read
    valid: int = 0
    nodata: int = 0
    min: float = np.inf
    max: float = -np.inf

    @property
    def pixels(self) -> int:
        return self.valid + self.nodata


@dataclass
class Task:
    """One piece of pass-1 work: which windows of which layer, counted how.

    A first read (``bins`` None) counts everything: totals, ranges, the high-bit histogram,
    full keys inside the ``run`` (first bin, count) of candidate bins, or every full key when
    ``hold``. A later read counts only full keys inside ``bins``.
    """

    layer: Layer | None  # None: values that are already in memory (exact_median)
    windows: list[WindowKey]
    indices: list[int]
    run: tuple[int, int] | None = None
    bins: list[int] | None = None
    hold: bool = False
    # keys read earlier (the held sample's) to count inside ``run`` too: the worker does it,
    # not the merging thread, which would hold the GIL for it (a 12 MB bincount a layer)
    also: np.ndarray | None = None
    # a band task (passes.fused): the float edges of a band of keys; only totals, the count
    # below the band and the keys inside it come back
    edges: tuple[np.float32, np.float32] | None = None

    @property
    def first_read(self) -> bool:
        return self.bins is None


def in_band(valid: np.ndarray, edges: tuple[np.float32, np.float32]) -> tuple[int, np.ndarray]:
    """How many ``valid`` values lie below the band whose float edges are ``edges``, and the
    keys of those inside it (passes.fused.float_band: two comparisons a value, keys only for
    the values inside)."""
    low, high = edges
    if not valid.size or low > high:  # an empty band: nothing is spilled, nothing below
        return 0, np.empty(0, np.uint32)
    under = valid < low
    inside = valid <= high
    inside &= ~under
    return int(np.count_nonzero(under)), to_keys(valid[inside])


def count_band(chunks: Iterable[tuple[np.ndarray, int]], task: Task) -> Counts:
    """A band task: totals, min, max, the values below the band and the keys inside it."""
    assert task.edges is not None
    out = Counts(indices=np.asarray(task.indices, dtype=np.int64))
    near: list[np.ndarray] = []
    for data, n_invalid in chunks:
        out.nodata += n_invalid
        if not data.size:
            continue
        out.valid += data.size
        out.min, out.max = min(out.min, float(data.min())), max(out.max, float(data.max()))
        below, keys = in_band(data, task.edges)
        out.below += below
        near.append(keys)
    out.near = np.concatenate(near) if near else np.empty(0, np.uint32)
    return out


def count_values(chunks: Iterable[tuple[np.ndarray, int]], task: Task) -> Counts:
    """Count ``(valid float32 values, nodata count)`` chunks, one per window of ``task``."""
    if task.edges is not None:
        return count_band(chunks, task)
    first_read = task.bins is None
    out = Counts(indices=np.asarray(task.indices, dtype=np.int64))
    if first_read:
        out.ranges = np.tile(np.array([1, 0], dtype=np.int32), (len(task.indices), 1))
    counter = MedianCounter(*(task.run or (0, 0))) if first_read else None
    seconds = {b: MedianCounter(b, 1) for b in (task.bins or ())}
    held: list[np.ndarray] = []

    def values() -> Iterator[np.ndarray]:
        for j, (data, n_invalid) in enumerate(chunks):
            if first_read:
                assert out.ranges is not None
                out.nodata += n_invalid
                out.valid += data.size
                if data.size:
                    lo, hi = float(data.min()), float(data.max())
                    out.min, out.max = min(out.min, lo), max(out.max, hi)
                    out.ranges[j] = bin_range(lo, hi)
            yield data

    for keys in batched(to_keys(v) for v in values()):
        if counter is not None:
            counter.add(keys)
        if task.hold:
            held.append(keys)
        for second in seconds.values():
            second.add(keys, count_high=False)
    if task.also is not None and counter is not None and counter.n:
        counter.add(task.also, count_high=False)

    parts: list[tuple[np.ndarray, np.ndarray]] = []
    if counter is not None:
        out.high = sparse(counter.high)
        if counter.n:
            parts.append(sparse(counter.low, counter.first << 16))
    parts += [sparse(s.low, b << 16) for b, s in seconds.items()]
    if task.hold:
        out.held = np.concatenate(held) if held else np.empty(0, np.uint32)
    if parts:
        out.keys = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return out


def count_task(task: Task) -> Counts:
    """Read and count the windows of ``task`` (on whichever worker runs it)."""
    assert task.layer is not None
    windows = [Window(*w) for w in task.windows]
    chunks = ((data, n) for _, data, n in iter_layer_values(task.layer, windows))
    return count_values(chunks, task)


class LayerPlan:
    """The merging side for one layer: hands out tasks stage by stage, merges their counts.

    Stages: scout -> rest -> finish -> done. ``next_tasks()`` gives the current stage's tasks
    once the previous stage's counts are all in (an empty list means wait for more counts,
    unless ``done``). ``windows`` is the layer's window list (``pixels`` each, about);
    ``hold_pixels`` bounds the held sample.
    """

    def __init__(
        self,
        layer: Layer | None,
        windows: Sequence[WindowKey],
        pixels: int,
        name: str = "",
        task_pixels: int | None = None,
        hold_pixels: int | None = None,
    ):
        self.layer = layer
        self.name = name or (layer.name if layer is not None else "")
        self.windows = list(windows)
        n = len(self.windows)
        task_pixels = TASK_PIXELS if task_pixels is None else task_pixels
        hold_pixels = HOLD_PIXELS if hold_pixels is None else hold_pixels
        self.per_task = max(1, task_pixels // max(pixels, 1))
        spread = sample_order(n, max(HOLD_WINDOWS, n // SCOUT_FRACTION), n, 1)
        picks = sample_order(len(spread), HOLD_WINDOWS, hold_pixels, pixels)
        self.held = [spread[i] for i in picks]
        held = set(self.held)
        self.scouts = [i for i in spread if i not in held]
        in_front = set(spread)
        self.rest = [i for i in range(n) if i not in in_front]
        self.ranges = np.tile(np.array([1, 0], dtype=np.int32), (n, 1))
        self.scouted = np.zeros(BINS, dtype=np.int64)
        self.held_keys: list[np.ndarray] = []  # every key of the held windows, as read
        self.counter: MedianCounter | None = None
        self.seconds: dict[int, np.ndarray] = {}
        self.bins: list[int] = []
        self.missing: list[int] = []
        self.totals = {"valid": 0, "nodata": 0, "min": np.inf, "max": -np.inf}
        self.stage = "new"
        self.outstanding = 0

    @classmethod
    def for_layer(cls, layer: Layer, grid: Grid, **kwargs: int) -> LayerPlan:
        windows = layer_blocks(grid, layer)
        return cls(layer, windows, windows[0][2] * windows[0][3], **kwargs)  # type: ignore[arg-type]

    @property
    def done(self) -> bool:
        return self.stage == "done"

    def _tasks(self, indices: Sequence[int], **how: object) -> list[Task]:
        out = []
        for s in range(0, len(indices), self.per_task):
            part = list(indices[s : s + self.per_task])
            windows = [self.windows[i] for i in part]
            out.append(Task(self.layer, windows, part, **how))  # type: ignore[arg-type]
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
            return self._tasks(self.held, hold=True) + self._tasks(self.scouts)
        if self.stage == "scout":
            self.stage = "rest"
            run = choose_candidates(self.scouted)
            self.counter = MedianCounter(*run)
            self.counter.high += self.scouted
            tasks = self._tasks(self.rest, run=run)
            held = np.concatenate(self.held_keys) if self.held_keys else None
            if tasks and held is not None:
                tasks[0].also = held  # a worker counts them with its windows
            elif held is not None:
                self.counter.add(held, count_high=False)
            return tasks
        assert self.counter is not None
        if self.stage == "rest":
            self.stage = "finish"
            if self.counter.count == 0:
                where = f" ({self.layer.path})" if self.layer is not None else ""
                raise InputError(
                    f"layer '{self.name}'{where} has no valid pixel: every value is nodata"
                )
            self.bins = sorted({b for b, _ in self.counter.middle_bins()})
            self.missing = self.counter.missing()
            self.seconds = {b: np.zeros(BINS, dtype=np.int64) for b in self.bins}
            for keys in self.held_keys:  # held keys: no second read
                for b in self.missing:
                    self.seconds[b] += MedianCounter(b, 1).counted(keys)
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

    def _add_seconds(self, keys: np.ndarray, counts: np.ndarray, bins: Iterable[int]) -> None:
        for b in bins:
            inside = (keys >> 16) == b
            self.seconds[b][(keys[inside] & 0xFFFF).astype(np.int64)] += counts[inside]

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
        if counts.held is not None:
            self.held_keys.append(counts.held)
        keys, n = counts.keys
        if not keys.size:
            return
        if task.first_read:  # keys inside the candidate run
            assert self.counter is not None
            self.counter.add_sparse(keys, n)
        else:
            self._add_seconds(keys, n, self.seconds)

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


def layer_blocks(grid: Grid, layer: Layer) -> list[WindowKey]:
    """The windows pass 1 reads one layer by: its whole blocks (inputs.windows.layer_windows)."""
    return [window_key(w) for w in layer_windows(grid, layer.block_shape)]


def sample_order(n: int, max_windows: int, max_pixels: int, pixels_per_window: int) -> list[int]:
    """Indices of windows spread evenly over the layer, to read (and keep) first."""
    k = max(1, min(n, max_windows, max(1, max_pixels // max(pixels_per_window, 1))))
    return sorted({int(i) for i in np.linspace(0, n - 1, k).round()})


Runner = Callable[[Callable[[], "Task | None"]], Iterator[tuple[Task, Counts]]]


def compute_stats(
    layers: Sequence[Layer],
    grid: Grid,
    run: Runner,
    open_layers: int = 2,
    progress: Callable[[int], object] | None = None,
) -> dict[str, LayerStats]:
    """Exact statistics of every layer, from tasks that ``run`` counts on some engine.

    ``run(take)`` asks ``take()`` for tasks (None: nothing more for now) and yields each task
    with its counts as they come back, in any order. At most ``open_layers`` layers are being
    merged at once (each holds up to about 26 MB of counters).
    """
    todo = deque(layers)
    plans: dict[str, LayerPlan] = {}
    results: dict[str, LayerStats] = {}
    queue: deque[Task] = deque()

    def start_layers() -> None:
        while todo and len(plans) < max(1, open_layers):
            plan = LayerPlan.for_layer(todo.popleft(), grid)
            plans[plan.name] = plan
            queue.extend(plan.next_tasks())

    start_layers()
    for task, counts in run(lambda: queue.popleft() if queue else None):
        if task.first_read and progress is not None:
            progress(counts.pixels)
        assert task.layer is not None
        plan = plans[task.layer.name]
        plan.merge(task, counts)
        queue.extend(plan.next_tasks())
        if plan.done:
            results[plan.name] = plan.result()
            if results[plan.name].second_read:
                log.info("layer '%s': the median needed a second read", plan.name)
            del plans[plan.name]
            start_layers()
    return {layer.name: results[layer.name] for layer in layers}


def serial(take: Callable[[], Task | None]) -> Iterator[tuple[Task, Counts]]:
    """Count tasks one after the other in this thread."""
    while (task := take()) is not None:
        yield task, count_task(task)


def exact_median(values: np.ndarray, chunk: int = 65536) -> np.float32:
    """The same counting over an in-memory array of valid values (for tests and tools)."""
    values = np.asarray(values, dtype=np.float32).ravel()
    if values.size == 0:
        raise ValueError("no valid values")
    chunks = [values[i : i + chunk] for i in range(0, values.size, chunk)]
    return plan_in_memory(chunks).counter.median()  # type: ignore[union-attr]


def plan_in_memory(
    chunks: Sequence[np.ndarray],
    held: Sequence[int] | None = None,
    scouts: Sequence[int] | None = None,
) -> LayerPlan:
    """A finished plan over in-memory chunks of valid values (one chunk per window), with the
    held and scout chunks chosen as for a layer, or given."""
    plan = LayerPlan(None, [(0, 0, 0, 0)] * len(chunks), max(c.size for c in chunks), "values")
    if held is not None and scouts is not None:
        plan.held, plan.scouts = list(held), list(scouts)
        front = {*held, *scouts}
        plan.rest = [i for i in range(len(chunks)) if i not in front]
    while not plan.done:
        for task in plan.next_tasks():
            plan.merge(task, count_values(((chunks[i], 0) for i in task.indices), task))
    return plan
