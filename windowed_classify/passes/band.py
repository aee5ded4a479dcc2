"""Exact medians by counting against a band of keys: the pure parts.

Every float32 maps to an order-preserving uint32 key (float_keys.py). A guide sample gives
each layer a band of high-16-bit bins around its median, ``BAND`` of the values on either
side in rank. Every value read is then compared, as a key, with the band's two edges: those
below are only counted, those inside are counted by their high 16 bits and kept (spilled to
disk, passes/spill.py). Once every value is counted, the median's rank minus the count below
says which high bin holds it and where inside it; one read of the spilled keys of that bin,
counted by their low 16 bits, gives the value exactly. Every count adds up exactly, in any
order, on any worker; memory per layer is a few counters, whatever the raster's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..float_keys import BINS, from_key, high_bins, to_keys

BAND = 0.15  # rank on each side of the guide's median whose keys are kept


@dataclass(frozen=True)
class Band:
    """High bins ``first`` .. ``last`` of a layer's keys."""

    first: int
    last: int

    @property
    def empty(self) -> bool:
        return self.last < self.first

    @property
    def keys(self) -> tuple[np.uint32, np.uint32]:
        """(lowest, highest) key inside the band."""
        return np.uint32(self.first << 16), np.uint32((self.last << 16) | 0xFFFF)

    @property
    def base(self) -> int:
        """The high bin counted at index 0 of a LayerCounts' bins."""
        return self.first

    @property
    def width(self) -> int:
        return max(self.last - self.first + 1, 0)


EVERY = Band(0, BINS - 1)  # every high bin: a guide window's band, all its keys kept


def band_of(high: np.ndarray, side: float = BAND) -> Band:
    """The band of high bins holding ranks 0.5 - side .. 0.5 + side of a histogram."""
    n = int(high.sum())
    if n == 0:
        return Band(0, -1)
    cum = np.cumsum(high)
    first = int(np.searchsorted(cum, max(0, int((0.5 - side) * n)), side="right"))
    last = int(np.searchsorted(cum, min(n - 1, int((0.5 + side) * n)), side="right"))
    return Band(first, last)


def split(valid: np.ndarray, band: Band) -> tuple[int, np.ndarray]:
    """How many ``valid`` values lie below the band, and the keys of those inside it.

    Keys are compared, not floats: a value's key is in the band exactly when its high bin is
    (floats would tie -0.0 with +0.0 at an edge). ``np.compress`` picks the keys: a boolean
    index of a random mask costs four times as much (numpy 2.4, 65,536 values)."""
    if not valid.size or band.empty:
        return 0, np.empty(0, np.uint32)
    keys = to_keys(valid)
    if band == EVERY:  # a guide window's: every key is kept
        return 0, keys
    low, high = band.keys
    below = int(np.count_nonzero(keys < low))
    inside = (keys - low) <= (high - low)  # unsigned: keys below low wrap around, above
    return below, np.compress(inside, keys)


@dataclass
class LayerCounts:
    """What some values of one layer counted against its band; adds up exactly.

    ``bins`` counts the kept keys by high bin, relative to the band's ``base``: sparse (bins,
    counts) as a worker sends it, made dense by ``merge`` on the side that adds them up."""

    valid: int = 0
    nodata: int = 0
    below: int = 0
    min: float = np.inf
    max: float = -np.inf
    bins: tuple[np.ndarray, np.ndarray] | np.ndarray | None = None

    def add_values(self, valid: np.ndarray, nodata: int, band: Band) -> np.ndarray:
        """Count one piece's valid values (and its nodata count); returns the keys inside the
        band, to keep. One piece per LayerCounts (a window or a task)."""
        self.nodata += nodata
        if not valid.size:
            return np.empty(0, np.uint32)
        self.valid += valid.size
        self.min = min(self.min, float(valid.min()))
        self.max = max(self.max, float(valid.max()))
        below, keys = split(valid, band)
        self.below += below
        if keys.size:
            high = high_bins(keys)
            first = int(high.min())  # counted from the lowest bin found, not the band's first
            counts = np.bincount((high - np.uint32(first)).astype(np.intp))
            where = np.flatnonzero(counts)
            self.bins = ((where + (first - band.base)).astype(np.int32), counts[where])
        return keys

    def merge(self, other: LayerCounts, band: Band) -> None:
        """Add ``other``'s counts (a worker's piece) into these (the total)."""
        self.valid += other.valid
        self.nodata += other.nodata
        self.below += other.below
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)
        if other.bins is None:
            return
        if not isinstance(self.bins, np.ndarray):
            self.bins = np.zeros(band.width, dtype=np.int64)
        where, counts = other.bins
        self.bins[where] += counts

    @property
    def kept(self) -> int:
        return int(self.bins.sum()) if isinstance(self.bins, np.ndarray) else 0


def middle_ranks(valid: int) -> tuple[int, int]:
    """The 0-based ranks of the middle value(s): equal for an odd count."""
    return (valid - 1) // 2, valid // 2


def locate(counts: LayerCounts, band: Band, ranks: Sequence[int]) -> list[tuple[int, int]] | None:
    """(high bin, rank inside it) of each rank among the kept keys; None when a rank lies
    outside the band (the guide was wrong: the layer is counted again, passes/histogram.py)."""
    if not isinstance(counts.bins, np.ndarray):
        return None
    cum = np.cumsum(counts.bins)
    out = []
    for rank in ranks:
        r = rank - counts.below
        if r < 0 or r >= int(cum[-1]):
            return None
        i = int(np.searchsorted(cum, r, side="right"))
        out.append((band.base + i, r - (int(cum[i - 1]) if i else 0)))
    return out


def low_bins(keys: np.ndarray, bins: Iterable[int]) -> dict[int, np.ndarray]:
    """For each high bin of ``bins``: the low 16 bits of ``keys`` in it, counted (65,536).

    Adjacent bins (the two middle ranks of an even count) are picked in one pass: keys minus
    the first bin's lowest key, unsigned, are below ``span`` exactly for the keys in them."""
    wanted = set(bins)
    out: dict[int, np.ndarray] = {}
    for first in sorted(wanted):
        if first in out:
            continue
        n = 2 if first + 1 in wanted else 1
        relative = keys - np.uint32(first << 16)
        inside = np.compress(relative < np.uint32(n << 16), relative)
        counts = np.bincount(inside.astype(np.intp), minlength=n * BINS)
        for k in range(n):
            out[first + k] = counts[k * BINS : (k + 1) * BINS]
    return out


def value_at(b: int, low_counts: np.ndarray, rank: int) -> np.float32:
    """The value of rank ``rank`` among the keys of high bin ``b`` (their low-bit counts)."""
    low = int(np.searchsorted(np.cumsum(low_counts), rank, side="right"))
    return from_key((b << 16) | low)


def median_of(values: Sequence[np.float32], count: int) -> float:
    """pandas' median from the middle value(s): np.mean in float64 (which turns -0.0 into
    +0.0), then cast to float32 as the tool stores it."""
    middle = list(values[:1]) if count % 2 else list(values)
    return float(np.float32(np.mean(np.asarray(middle, dtype=np.float64))))
