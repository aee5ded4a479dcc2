"""Exact statistics of a float output band, streamed: never the whole raster in memory.

Valid values are those a GIS sees as data: finite and not the band's nodata value. While pass 2
writes the band, each window adds its count, min, max, mean and sum of squared deviations
(merged exactly as Chan et al.'s parallel variance, in float64) and counts its values by the top
16 bits of their order-preserving keys (the keys of pass 1's medians: 65,536 bins). Once the
band is on disk, one read of it (three for float64) gives what needs the final min and max or
more than 16 bits:

- the histogram: 20 equal-width bins from the min to the max, counted by ``numpy.histogram``
  with the same range on every block, so the counts are those of one call on all values
  (where float32 cannot hold 20 distinct edges, a near-constant band of large values, the
  bins are computed in float64; where not even float64 can, one bin holds every value);
- the 2nd and 98th percentiles as ``numpy.percentile(values, q)`` computes them (linear, R's
  type 7): the two order statistics around each are found exactly, 16 bits of their keys per
  read (counting only the values under the prefix found so far), then interpolated as numpy
  does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..float_keys import BINS, from_order_key, order_keys

HISTOGRAM_BINS = 20
PERCENTILES = (2, 98)
NUMPY2 = int(np.__version__.split(".")[0]) >= 2


def valid_values(data: np.ndarray, nodata: float | None) -> np.ndarray:
    """The values a GIS counts: finite and not ``nodata``, as a flat array."""
    flat = np.asarray(data).ravel()
    ok = np.isfinite(flat)
    if nodata is not None and not math.isnan(nodata):
        ok &= flat != flat.dtype.type(nodata)
    return flat[ok]


def percentile_rank(n: int, percent: float) -> tuple[int, int, float]:
    """(lower rank, upper rank, weight) of ``numpy.percentile(values, percent)`` over ``n``
    sorted values: numpy's "linear" virtual index (n - 1) * q, and its bounds."""
    q = np.true_divide(percent, 100)
    virtual = (n - 1) * q
    below = math.floor(virtual)
    if virtual >= n - 1:
        lower = upper = n - 1
        below = -1  # numpy's index of the last value, which its weight is computed from
    elif virtual < 0:
        lower = upper = below = 0
    else:
        lower, upper = below, below + 1
    return lower, upper, float(virtual - below)


def interpolate(a: np.float32, b: np.float32, gamma: float) -> float:
    """numpy's ``_lerp`` with its own types: float32 arithmetic on numpy 2 (a Python scalar
    percentile is a weak type there), float64 on numpy 1."""
    t: Any = gamma if NUMPY2 else np.float64(gamma)
    diff = b - a
    result = a + diff * t
    if t >= 0.5:
        result = b - diff * (1 - t)
    return float(result)


class FloatStats:
    """Statistics of one band; ``add`` while writing, ``finish`` over reads of the band."""

    def __init__(
        self, nodata: float | None, dtype: str = "float32", threshold: float | None = None
    ):
        self.nodata = nodata
        self.dtype = np.dtype(dtype)
        self.width = 8 * self.dtype.itemsize  # key bits: 32 or 64
        self.threshold = threshold  # count values <= it (the AOA share from a DI band)
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.min = math.inf
        self.max = -math.inf
        self.mean = 0.0
        self.m2 = 0.0
        self.high = np.zeros(BINS, dtype=np.int64)

    def _values(self, data: np.ndarray) -> np.ndarray:
        return valid_values(data, self.nodata).astype(self.dtype, copy=False)

    def add(self, data: np.ndarray) -> None:
        values = self._values(data)
        n = values.size
        if not n:
            return
        high = (order_keys(values) >> (self.width - 16)).astype(np.intp)
        self.high += np.bincount(high, minlength=BINS)
        self.min = min(self.min, float(values.min()))
        self.max = max(self.max, float(values.max()))
        wide = values.astype(np.float64)
        mean = float(wide.mean())
        m2 = float(np.square(wide - mean).sum())
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total

    def finish(self, read: Callable[[], Iterable[np.ndarray]]) -> dict[str, Any]:
        """The statistics; ``read()`` gives the band's values once more, in any pieces."""
        if not self.count:
            return {"count": 0}
        wanted = {p: percentile_rank(self.count, p) for p in PERCENTILES}
        ranks = sorted({r for lower, upper, _ in wanted.values() for r in (lower, upper)})
        # per rank: (key prefix found so far, values before that prefix)
        found = {r: _digit(self.high, r, 0, 0) for r in ranks}
        lo, hi = self.dtype.type(self.min), self.dtype.type(self.max)  # as numpy's own range
        wide = not _histogram_fits(lo, hi)
        if wide:
            lo, hi = np.float64(lo), np.float64(hi)
        binned_at_all = _histogram_fits(lo, hi)
        counts = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
        inside = 0
        for level in range(1, self.width // 16):
            shift = self.width - 16 * level
            low = {prefix: np.zeros(BINS, dtype=np.int64) for prefix, _ in found.values()}
            for block in read():
                values = self._values(block)
                if level == 1 and binned_at_all:
                    binned = values.astype(np.float64) if wide else values
                    counts += np.histogram(binned, bins=HISTOGRAM_BINS, range=(lo, hi))[0]
                    if self.threshold is not None:
                        inside += int(np.count_nonzero(values.astype(np.float64) <= self.threshold))
                keys = order_keys(values)
                head = keys >> shift
                for prefix, counter in low.items():
                    digits = (keys[head == prefix] >> (shift - 16)) & 0xFFFF
                    counter += np.bincount(digits.astype(np.intp), minlength=BINS)
            found = {r: _digit(low[p], r, p, before) for r, (p, before) in found.items()}
        if binned_at_all:
            edges = np.histogram(np.empty(0, lo.dtype), bins=HISTOGRAM_BINS, range=(lo, hi))[1]
        else:
            edges, counts = np.array([lo, hi]), np.array([self.count])
        out: dict[str, Any] = {
            "count": self.count,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "std": math.sqrt(self.m2 / self.count),
        }
        for p, (lower, upper, gamma) in wanted.items():
            a = from_order_key(found[lower][0], self.dtype)
            b = from_order_key(found[upper][0], self.dtype)
            out[f"percentile_{p}"] = interpolate(a, b, gamma)
        out["histogram"] = {"edges": [float(e) for e in edges], "counts": counts.tolist()}
        if self.threshold is not None:
            out["at_most_threshold"] = inside
        return out


def _histogram_fits(lo: np.floating, hi: np.floating) -> bool:
    """Whether numpy can make the 20 bins in the values' own type: distinct edges (numpy 2
    refuses others; numpy 1 fails on them later)."""
    try:
        # numpy's stub asks Python floats; numpy scalars keep the edges in the values' type
        empty = np.empty(0, lo.dtype)
        edges = np.histogram(empty, bins=HISTOGRAM_BINS, range=(lo, hi))[1]  # type: ignore[arg-type]
    except ValueError:  # "Too many bins for data range"
        return False
    return bool(np.all(np.diff(edges) > 0))


def _digit(counts: np.ndarray, rank: int, prefix: int, before: int) -> tuple[int, int]:
    """The next 16 bits of the key at ``rank``: (prefix with them, values before it)."""
    cum = np.cumsum(counts)
    digit = int(np.searchsorted(cum, rank - before, side="right"))
    return (prefix << 16) | digit, before + (int(cum[digit - 1]) if digit else 0)
