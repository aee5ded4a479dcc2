"""Exact medians of float32 values counted in bounded memory: the pure counting parts.

Each float32 maps to an order-preserving uint32 key. Every valid value is counted by the top
16 bits of its key (65,536 bins); values inside a run of "candidate" bins, chosen from an
early histogram, are counted in full (their low 16 bits too). When the middle rank(s) fall in
a candidate bin the median is exact after one read; a bin the candidates missed is counted
by reading again only what can hold it. The two middle values are averaged in float64, as
pandas does, then cast to float32.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from ..float_keys import BINS, from_key, high_bins, to_keys  # noqa: F401 - stats.py's too

MAX_CANDIDATES = 24  # low-bit counters kept per layer: 24 x 65,536 x 8 bytes = 12 MB
MARGIN = 0.03  # histogram quantiles 0.5 +- MARGIN (at least) become candidates
BATCH = 1 << 18  # values per histogram update (4x the bins: amortised, small temporaries)


def bin_range(lo: float, hi: float) -> tuple[int, int]:
    """(lowest, highest) high-16 bin of the keys of values whose min and max are lo and hi.

    Keys are monotonic; a zero extreme is taken as -0.0 below and +0.0 above, since min/max
    may return either sign when both are present.
    """
    lo = np.float32(-0.0) if lo == 0 else np.float32(lo)
    hi = np.float32(0.0) if hi == 0 else np.float32(hi)
    keys = to_keys(np.array([lo, hi], dtype=np.float32))
    return int(keys[0] >> 16), int(keys[1] >> 16)


def batched(arrays: Iterable[np.ndarray], size: int = BATCH) -> Iterator[np.ndarray]:
    """Concatenate small arrays into about ``size`` values: one histogram update per batch."""
    pending: list[np.ndarray] = []
    held = 0
    for a in arrays:
        pending.append(a)
        held += a.size
        if held >= size:
            yield np.concatenate(pending) if len(pending) > 1 else pending[0]
            pending, held = [], 0
    if pending:
        yield np.concatenate(pending) if len(pending) > 1 else pending[0]


def sparse(counts: np.ndarray, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(indices + offset as uint32 keys, counts) of the non-zero entries of a dense counter."""
    where = np.flatnonzero(counts)
    return (where + offset).astype(np.uint32), counts[where].astype(np.int64)


class MedianCounter:
    """Counts keys by their high 16 bits, and in full inside one run of candidate bins.

    The run is ``n`` contiguous high-16 bins starting at ``first``: a key is inside when
    ``key - (first << 16)`` (wrapping below) is less than ``n << 16``, one comparison.
    Bins counted in full later (a second read) are kept in ``extra``.
    """

    def __init__(self, first: int = 0, n: int = 0):
        self.high = np.zeros(BINS, dtype=np.int64)
        self.first, self.n = first, n
        self.base = np.uint32(first << 16)
        self._low = np.zeros(n * BINS, dtype=np.int64)
        self.extra: dict[int, np.ndarray] = {}
        # In-run offsets waiting to be counted: one bincount per low.size of them, since each
        # bincount writes a whole low.size array (12 MB for 24 bins), whatever it counts.
        self._pending: list[np.ndarray] = []
        self._pending_n = 0

    @property
    def count(self) -> int:
        return int(self.high.sum())

    @property
    def low(self) -> np.ndarray:
        """Full-key counts inside the run: ``n`` x 65,536 (bin-major)."""
        if self._pending:
            offsets = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
            self._low += np.bincount(offsets, minlength=self._low.size)
            self._pending, self._pending_n = [], 0
        return self._low

    def add(self, keys: np.ndarray, count_high: bool = True) -> None:
        if count_high:
            self.high += np.bincount(high_bins(keys), minlength=BINS)
        if self.n:
            offset = keys - self.base
            inside = offset[offset < self._low.size]
            if inside.size:
                self._pending.append(inside)
                self._pending_n += inside.size
                if self._pending_n >= self._low.size:
                    self.low  # noqa: B018 - counts what is pending

    def counted(self, keys: np.ndarray) -> np.ndarray:
        """The low counts ``keys`` add inside the run (without adding them)."""
        offset = keys - self.base
        return np.bincount(offset[offset < self._low.size], minlength=self._low.size)

    def add_sparse(self, keys: np.ndarray, counts: np.ndarray) -> None:
        """Distinct full keys (with their counts) counted elsewhere: those inside the run."""
        offset = keys - self.base
        inside = offset < self.low.size
        self.low[offset[inside].astype(np.int64)] += counts[inside]

    def low_counts(self, b: int) -> np.ndarray | None:
        if self.first <= b < self.first + self.n:
            i = b - self.first
            return self.low[i * BINS : (i + 1) * BINS]
        return self.extra.get(b)

    def middle_bins(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """(bin, rank inside bin) of the lower and upper middle values."""
        n = self.count
        if n == 0:
            raise ValueError("no valid values")
        cum = np.cumsum(self.high)
        out = []
        for rank in ((n - 1) // 2, n // 2):
            b = int(np.searchsorted(cum, rank, side="right"))
            before = int(cum[b - 1]) if b else 0
            out.append((b, rank - before))
        return out[0], out[1]

    def missing(self) -> list[int]:
        return sorted({b for b, _ in self.middle_bins() if self.low_counts(b) is None})

    def median(self) -> np.float32:
        values = []
        for b, rank in self.middle_bins():
            counts = self.low_counts(b)
            if counts is None:
                raise RuntimeError(f"bin {b} was not counted in full")
            low = int(np.searchsorted(np.cumsum(counts), rank, side="right"))
            values.append(from_key((b << 16) | low))
        # pandas (np.median) ends with np.mean of the middle value(s) in float64: that turns
        # -0.0 into +0.0, so use the same call rather than (a + b) / 2.
        middle = values[:1] if self.count % 2 else values
        return np.float32(np.mean(np.asarray(middle, dtype=np.float64)))


def choose_candidates(high: np.ndarray) -> tuple[int, int]:
    """(first bin, count) of high-16 bins likely to hold the median, from a high-bit histogram
    of part of the data: its quantiles 0.5 +- m, the band centred on its median in rank and
    narrowed until it spans at most MAX_CANDIDATES bins.
    """
    n = int(high.sum())
    if n == 0:
        return 0, 0
    cum = np.cumsum(high)
    margin = max(MARGIN, 4.0 / np.sqrt(n))
    while True:
        lo = int(np.searchsorted(cum, max(0, int((0.5 - margin) * n)), side="right"))
        hi = int(np.searchsorted(cum, min(n - 1, int((0.5 + margin) * n)), side="right"))
        if hi - lo + 1 <= MAX_CANDIDATES or margin < 1e-4:
            break
        margin /= 1.5
    if hi - lo + 1 > MAX_CANDIDATES:  # extremely spread: the bins nearest the median bin
        mid = int(np.searchsorted(cum, n // 2, side="right"))
        lo = max(lo, mid - MAX_CANDIDATES // 2)
        hi = lo + MAX_CANDIDATES - 1
    hi = min(hi, BINS - 1)
    return lo, hi - lo + 1
