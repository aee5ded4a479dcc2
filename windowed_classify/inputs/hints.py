"""Values that look like nodata nobody declared, from a sample of a layer's values.

A Landsat scene whose collar is 0, with no nodata tag, maps the collar as a class; a
threshold nobody can reach fills it with medians. These hints are warnings (the run still
runs), for a layer's values that are not among its nodata values:

- an edge value: the layer's minimum or maximum, holding at least ``EDGE_SHARE`` (and less
  than half) of the sampled pixels, with a gap to the next value larger than ``GAP`` of the
  layer's range;
- a usual sentinel: -9999, -99999, -32768, -32767, 32767, 65535, or a float fill beyond
  1e30 (e.g. -3.4e38), wherever it is; 0 on an unsigned layer and 255 on a uint8 layer with
  fewer than 255 distinct values, when they hold ``EDGE_SHARE`` or more.

A ``Summary`` holds what these rules need and adds up exactly, so pieces of a sample read by
different workers (the run's guide) give the same hints as the whole sample (``check``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

EDGE_SHARE = 0.01
GAP = 0.10
SENTINELS = (-9999.0, -99999.0, -32768.0, -32767.0, 32767.0, 65535.0)
HUGE = 1e30  # |v| beyond this is a float fill (e.g. -3.4e38), not a measurement
INF = float("inf")


def _value(v: float) -> str:
    return f"{v:g}"


@dataclass
class Summary:
    """What the hints need of some values of one layer (its declared nodata left out)."""

    n: int = 0
    lo: float = INF
    n_lo: int = 0
    lo2: float = INF  # the smallest value above lo
    hi: float = -INF
    n_hi: int = 0
    hi2: float = -INF  # the largest value below hi
    sentinels: dict[float, int] = field(default_factory=dict)
    zeros: int = 0
    huge: float | None = None
    bytes_seen: np.ndarray | None = None  # a uint8 layer's counts of its 256 values

    @classmethod
    def of(cls, values: np.ndarray, dtype: str, nodata_values: Sequence[float]) -> Summary:
        """The summary of ``values`` (float32 as a run reads them; NaN, inf and the layer's
        nodata values are left out here)."""
        declared = np.asarray(sorted({float(np.float32(v)) for v in nodata_values}), np.float32)
        values = values[np.isfinite(values)]
        if declared.size:
            values = values[~np.isin(values, declared)]
        return cls.of_valid(values, dtype)

    @classmethod
    def of_valid(cls, values: np.ndarray, dtype: str) -> Summary:
        """The summary of ``values`` that hold no NaN, inf or nodata value of the layer."""
        out = cls()
        if not values.size:
            return out
        # few passes over the values: a run summarises its guide's windows as it reads them
        out.n = int(values.size)
        out.lo, out.hi = float(values.min()), float(values.max())
        out.n_lo = int(np.count_nonzero(values == out.lo))
        out.n_hi = int(np.count_nonzero(values == out.hi))
        if out.n_lo < out.n:
            out.lo2 = float(np.min(values, where=values > out.lo, initial=INF))
            out.hi2 = float(np.max(values, where=values < out.hi, initial=-INF))
        for v in SENTINELS:
            if out.lo <= v <= out.hi:
                count = int(np.count_nonzero(values == np.float32(v)))
                if count:
                    out.sentinels[v] = count
        if np.dtype(dtype).kind == "u":  # only an unsigned layer's zeros can be a hint
            out.zeros = int(np.count_nonzero(values == 0))
        if max(-out.lo, out.hi) > np.float32(HUGE):  # as the float32 values compare
            huge = values[np.abs(values) > HUGE]
            out.huge = float(huge[0])
        if dtype == "uint8":
            out.bytes_seen = np.bincount(values.astype(np.int64).clip(0, 255), minlength=256)
        return out

    def merge(self, other: Summary) -> None:
        """Add ``other``'s values' summary to this one (exactly: any order gives the same)."""
        if not other.n:
            return
        if not self.n:
            self.__dict__.update(other.__dict__)
            self.sentinels = dict(other.sentinels)
            return
        self.lo, self.n_lo, self.lo2 = _edge(
            (self.lo, self.n_lo, self.lo2), (other.lo, other.n_lo, other.lo2), min
        )
        self.hi, self.n_hi, self.hi2 = _edge(
            (self.hi, self.n_hi, self.hi2), (other.hi, other.n_hi, other.hi2), max
        )
        self.n += other.n
        for v, count in other.sentinels.items():
            self.sentinels[v] = self.sentinels.get(v, 0) + count
        self.zeros += other.zeros
        if self.huge is None:
            self.huge = other.huge
        if other.bytes_seen is not None:
            self.bytes_seen = (
                other.bytes_seen.copy()
                if self.bytes_seen is None
                else self.bytes_seen + other.bytes_seen
            )

    def hints(self, dtype: str) -> list[str]:
        """One message per suspicious value, in value order."""
        if not self.n:
            return []
        n = self.n
        found: dict[float, str] = {}
        span = self.hi - self.lo
        for edge, count, nearest in (
            (self.lo, self.n_lo, self.lo2),
            (self.hi, self.n_hi, self.hi2),
        ):
            share = count / n
            if span > 0 and EDGE_SHARE <= share < 0.5 and abs(nearest - edge) > GAP * span:
                found[edge] = (
                    f"value {_value(edge)} covers {100 * share:.3g}% of the sampled pixels at "
                    "the edge of its range, far from the next value; if it means nodata, add it "
                    "to nodata.values"
                )
        usual = dict(self.sentinels)
        if np.dtype(dtype).kind == "u" and self.zeros / n >= EDGE_SHARE:
            usual[0.0] = self.zeros
        for v, count in usual.items():
            found.setdefault(
                v,
                f"value {_value(v)}, a usual nodata value, covers {100 * count / n:.3g}% of the "
                "sampled pixels; if it means nodata, add it to nodata.values",
            )
        seen = self.bytes_seen
        few = seen is not None and np.count_nonzero(seen) < 255 and seen[255] / n >= EDGE_SHARE
        if few and seen is not None and 255.0 not in found:
            found[255.0] = (
                f"value 255 covers {100 * seen[255] / n:.3g}% of the sampled pixels of a byte "
                "layer that uses few other values; if it means nodata, add it to nodata.values"
            )
        if self.huge is not None and self.huge not in found:
            found[self.huge] = (
                f"value {_value(self.huge)} looks like a float nodata fill, not a measurement; "
                "if it means nodata, add it to nodata.values (or to the file's nodata tag)"
            )
        return [found[v] for v in sorted(found)]


def _edge(
    a: tuple[float, int, float], b: tuple[float, int, float], pick: Callable[..., float]
) -> tuple[float, int, float]:
    """Merge (edge, count, next) of two pieces: the edge of both, its count, the next value."""
    edge = pick(a[0], b[0])
    count = (a[1] if a[0] == edge else 0) + (b[1] if b[0] == edge else 0)
    candidates = [x for piece in (a, b) for x in (piece[0], piece[2]) if x != edge]
    nearest = pick(candidates) if candidates else (INF if pick is min else -INF)
    return edge, count, nearest


def nodata_hints(values: np.ndarray, dtype: str, nodata_values: Sequence[float]) -> list[str]:
    """The hints of one sample of a layer's values."""
    return Summary.of(values, dtype, nodata_values).hints(dtype)
