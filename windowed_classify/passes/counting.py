"""Pass 1's work on the workers: count values against each layer's band (in pass 2's windows,
or in groups of a layer's blocks on their own), keep the keys inside it in the worker's spill
files, and select the median's bin among those keys at the end.

Each job is small and picklable; its result says which worker ran it (``worker``), since
that worker's files hold the item's keys (passes/spill.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from ..float_keys import BINS, high_bins, to_keys
from ..inputs.hints import Summary
from ..inputs.layers import Layer
from ..inputs.reader import nodata_mask
from ..inputs.windows import WindowKey
from .band import Band, LayerCounts, low_bins
from .executor import WorkerLost
from .spill import keys_path, read_keys
from .worker import WorkerState


@dataclass(frozen=True)
class CountSpec:
    """Which layers of a stack window are counted, against which bands, and where the keys
    inside them go (``spill`` None: the worker's own disk)."""

    rows: tuple[int, ...]  # each counted layer's row in the window's (layers, pixels) values
    bands: tuple[Band, ...]
    spill: Path | None
    token: str


def count_window(
    values: np.ndarray,
    invalid: np.ndarray,
    spec: CountSpec,
    item: int,
    worker: WorkerState,
    dtypes: Sequence[str] | None = None,
) -> tuple[list[LayerCounts], list[Summary]]:
    """Count one window's values of every counted layer; keep the keys inside the bands.
    With the counted layers' ``dtypes``, also summarise their values (the guide's hints)."""
    spills = worker.spills(spec.token, spec.spill)
    counts, summaries = [], []
    for j, (row, band) in enumerate(zip(spec.rows, spec.bands, strict=True)):
        bad = invalid[row]
        n_bad = int(np.count_nonzero(bad))
        valid = np.compress(~bad, values[row]) if n_bad else values[row]
        counted = LayerCounts()
        spills.keys(j, item, counted.add_values(valid, n_bad, band))
        counts.append(counted)
        if dtypes is not None:
            summaries.append(Summary.of_valid(valid, dtypes[j]))
    return counts, summaries


@dataclass
class Counted:
    """A worker's answer for one counting item."""

    worker: str
    counts: list[LayerCounts]
    retries: int = 0


def _layer_values(
    reader: Any, layer: Layer, windows: Sequence[WindowKey]
) -> list[tuple[np.ndarray, int]]:
    """(valid values, nodata count) of each of a layer's windows."""
    out = []
    for key in windows:
        data = reader.read(Window(*key))[0][0]
        invalid = nodata_mask(data, layer.nodata_values)
        n_bad = int(np.count_nonzero(invalid))
        out.append((np.compress(~invalid, data) if n_bad else data, n_bad))
    return out


@dataclass(frozen=True, eq=False)
class CountJob:
    """Counts groups of one layer's blocks against its band: pass 1 on its own (a pass 2 that
    needs the medians first). Item: (task id, counted layer j, windows)."""

    layers: tuple[Layer, ...]  # the counted layers (j indexes them)
    spec: CountSpec

    @property
    def token(self) -> str:
        return self.spec.token

    def __call__(self, item: tuple[int, int, list[WindowKey]], worker: WorkerState) -> Counted:
        task, j, windows = item
        layer = self.layers[j]
        reader = worker.reader(f"{self.token}/{j}", [layer])
        before = reader.counts.total
        counts = LayerCounts()
        spills = worker.spills(self.spec.token, self.spec.spill)
        kept = []
        for valid, n_bad in _layer_values(reader, layer, windows):
            piece = LayerCounts()
            kept.append(piece.add_values(valid, n_bad, self.spec.bands[j]))
            counts.merge(piece, self.spec.bands[j])
        keys = np.concatenate(kept) if kept else np.empty(0, np.uint32)
        spills.keys(j, task, keys)
        sparse = _sparse(counts)
        return Counted(worker.id, [sparse], reader.counts.total - before)


def _sparse(counts: LayerCounts) -> LayerCounts:
    """Counts as a worker sends them: the kept keys' bins sparse."""
    if isinstance(counts.bins, np.ndarray):
        where = np.flatnonzero(counts.bins)
        counts.bins = (where.astype(np.int32), counts.bins[where])
    return counts


@dataclass(frozen=True, eq=False)
class RecountJob:
    """Counts whole stack windows again (their keys were on a worker that is gone).
    Item: (item id, window)."""

    layers: tuple[Layer, ...]  # the stack the windows were read as
    spec: CountSpec

    @property
    def token(self) -> str:
        return self.spec.token

    def __call__(self, item: tuple[int, WindowKey], worker: WorkerState) -> Counted:
        index, key = item
        reader = worker.reader(f"{self.token}/stack", self.layers)
        before = reader.counts.total
        values, invalid = reader.read(Window(*key))
        counts, _ = count_window(values, invalid, self.spec, index, worker)
        return Counted(worker.id, counts, reader.counts.total - before)


@dataclass(frozen=True, eq=False)
class SelectJob:
    """Reads a worker's kept keys of one layer and counts, by their low 16 bits, those in the
    median's high bin(s). Item: (holder, counted layer j, bins, accepted item ids)."""

    folder: Path | None  # the spill folder (None: the worker's own disk)
    token: str

    def __call__(
        self, item: tuple[str, int, tuple[int, ...], np.ndarray], worker: WorkerState
    ) -> dict[int, np.ndarray]:
        holder, j, bins, accepted = item
        if self.folder is None and worker.id != holder:  # a new worker at the holder's address
            raise WorkerLost(holder)
        root = self.folder if self.folder is not None else worker.scratch
        assert root is not None
        ok = set(accepted.tolist())
        path = keys_path(root / self.token, holder, j)
        total = {b: np.zeros(BINS, dtype=np.int64) for b in bins}
        for keys in read_keys(path, ok.__contains__):
            for b, counts in low_bins(keys, bins).items():
                total[b] += counts
        return total


@dataclass
class Histogram:
    """Full counts of a layer whose median the band missed: the high 16 bits of every valid
    key (first read), then the low 16 bits of those in the median's bin(s) (second read)."""

    worker: str
    valid: int = 0
    nodata: int = 0
    min: float = np.inf
    max: float = -np.inf
    high: np.ndarray | None = None
    low: dict[int, np.ndarray] = field(default_factory=dict)
    retries: int = 0


@dataclass(frozen=True, eq=False)
class HistogramJob:
    """Counts groups of one layer's blocks by key bits. Item: (counted layer j, windows,
    bins: None for the first read, else the bins whose low bits to count)."""

    layers: tuple[Layer, ...]
    token: str

    def __call__(
        self, item: tuple[int, list[WindowKey], tuple[int, ...] | None], worker: WorkerState
    ) -> Histogram:
        j, windows, bins = item
        layer = self.layers[j]
        reader = worker.reader(f"{self.token}/{j}", [layer])
        before = reader.counts.total
        out = Histogram(worker.id)
        if bins is None:
            out.high = np.zeros(BINS, dtype=np.int64)
        else:
            out.low = {b: np.zeros(BINS, dtype=np.int64) for b in bins}
        for valid, n_bad in _layer_values(reader, layer, windows):
            out.nodata += n_bad
            if not valid.size:
                continue
            out.valid += valid.size
            out.min, out.max = min(out.min, float(valid.min())), max(out.max, float(valid.max()))
            keys = to_keys(valid)
            if out.high is not None:
                out.high += np.bincount(high_bins(keys), minlength=BINS)
            else:
                for b, counts in low_bins(keys, out.low).items():
                    out.low[b] += counts
        out.retries = reader.counts.total - before
        return out
