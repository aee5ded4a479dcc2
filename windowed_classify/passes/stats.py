"""Pass 1: exact per-layer median, min, max and counts, streamed in bounded memory.

Each float32 maps to an order-preserving uint32 key. Every valid value is counted by the top
16 bits of its key (65,536 bins). A spread-out sample of the layer's windows is read first and
kept; it predicts which bins the middle rank(s) fall in ("candidate" bins), and for values in
those bins the low 16 bits are counted too. When the middle ranks land in candidate bins (the
common case) the median is exact after one read; otherwise only the missing bins are counted
in a second read of that layer. The two middle values are averaged in float64, as pandas does,
then cast to float32.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import InputError
from ..inputs.grid import Grid
from ..inputs.layers import Layer
from ..inputs.reader import iter_layer_values
from ..inputs.windows import layer_windows

log = logging.getLogger(__name__)

BINS = 1 << 16
SIGN = np.uint32(0x80000000)
MAX_CANDIDATES = 24  # low-bit counters kept per layer: 24 x 65,536 x 8 bytes = 12 MB
SAMPLE_PIXELS = 1 << 20  # about 1 million values held while candidates are chosen
SAMPLE_WINDOWS = 64
MARGIN = 0.03  # sample quantiles 0.5 +- MARGIN (at least) become candidates
SCOUT_FRACTION = 4  # a quarter of the windows, spread out, choose the candidate bins
BATCH = 1 << 18  # values per histogram update (4x the bins: amortised, small temporaries)


def to_keys(values: np.ndarray) -> np.ndarray:
    """float32 -> uint32 keys whose unsigned order is the float order (-0.0 just below +0.0).

    Non-negative floats get their sign bit set; negative ones have every bit flipped.
    """
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    flip = (bits.view(np.int32) >> 31).view(np.uint32)  # all ones where negative
    return bits ^ (flip | SIGN)


def from_key(key: int) -> np.float32:
    k = np.uint32(key)
    bits = k & ~SIGN if k & SIGN else ~k
    return np.array([bits], dtype=np.uint32).view(np.float32)[0]


class MedianCounter:
    """Counts keys by their high 16 bits, and in full inside one run of candidate bins.

    The run is ``n`` contiguous high-16 bins starting at ``first``: a key is inside when
    ``key - (first << 16)`` (wrapping below) is less than ``n << 16``, one comparison.
    Bins counted later by a second read are kept in ``extra``.
    """

    def __init__(self, first: int = 0, n: int = 0):
        self.high = np.zeros(BINS, dtype=np.int64)
        self.first, self.n = first, n
        self.base = np.uint32(first << 16)
        self.low = np.zeros(n * BINS, dtype=np.int64)
        self.extra: dict[int, np.ndarray] = {}

    @property
    def count(self) -> int:
        return int(self.high.sum())

    def add(self, keys: np.ndarray, count_high: bool = True) -> None:
        if count_high:
            self.high += np.bincount(keys >> 16, minlength=BINS)
        if self.n:
            offset = keys - self.base
            offset = offset[offset < self.low.size]
            if offset.size:
                self.low += np.bincount(offset, minlength=self.low.size)

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


def _batched(arrays: Iterable[np.ndarray], size: int = BATCH) -> Iterator[np.ndarray]:
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


def streaming_median(
    chunks: Callable[[Sequence[int] | None], Iterable[np.ndarray]],
    sample: Sequence[np.ndarray] = (),
    scout: Callable[[Sequence[int] | None], Iterable[np.ndarray]] | None = None,
) -> tuple[np.float32, bool]:
    """Exact median of float32 values given in three parts, each read once in the common case.

    - ``sample``: values held in memory;
    - ``scout(None)``: values counted by their high bits only, before the candidate bins are
      chosen from the histogram of sample + scout (a large, spread-out guess costs no memory);
    - ``chunks(None)``: the rest, counted in full inside the candidate bins.
    Afterwards ``scout(bins)`` (and, when the guess missed, ``chunks(bins)``) is called once
    more for the median's bins only; it may skip chunks that cannot hold a key in them.
    Returns (median, whether the guess missed: the rest was read again for missing bins).
    """
    sample_keys = to_keys(np.concatenate(sample)) if len(sample) else np.empty(0, np.uint32)
    scouted = MedianCounter()
    scouted.add(sample_keys)
    for keys in _batched(to_keys(c) for c in (scout(None) if scout else ())):
        scouted.add(keys)
    counter = MedianCounter(*choose_candidates(scouted.high))
    counter.high += scouted.high
    counter.add(sample_keys, count_high=False)
    del sample_keys
    for keys in _batched(to_keys(c) for c in chunks(None)):
        counter.add(keys)
    if counter.count == 0:
        raise ValueError("no valid values")
    bins = sorted({b for b, _ in counter.middle_bins()})
    missing = counter.missing()
    if not missing and scout is None:
        return counter.median(), False
    # One more read, of the median's bins only (they may be far apart: a counter each).
    seconds = {b: MedianCounter(b, 1) for b in bins}

    def count(parts: Iterable[np.ndarray], which: Sequence[int]) -> None:
        for keys in _batched(to_keys(c) for c in parts):
            for b in which:
                seconds[b].add(keys, count_high=False)

    if scout:
        count(scout(bins), bins)
    if missing:
        count(sample, missing)
        count(chunks(missing), missing)
    for b in bins:
        inside = counter.low_counts(b)
        if inside is None:
            counter.extra[b] = seconds[b].low
        else:  # a candidate bin: add the scouted values' counts to the rest's
            inside += seconds[b].low
    return counter.median(), bool(missing)


def exact_median(values: np.ndarray, chunk: int = 65536) -> np.float32:
    """The streaming algorithm over an in-memory array of valid values (for tests and tools)."""
    values = np.asarray(values, dtype=np.float32).ravel()
    if values.size == 0:
        raise ValueError("no valid values")
    pieces = [values[i : i + chunk] for i in range(0, values.size, chunk)]
    step = max(1, len(pieces) // SAMPLE_WINDOWS)
    picked = set(range(0, len(pieces), step)[:SAMPLE_WINDOWS])
    sample = [pieces[i] for i in sorted(picked)]
    rest = [p for i, p in enumerate(pieces) if i not in picked]
    median, _ = streaming_median(lambda missing: iter(rest), sample)
    return median


# ----------------------------------------------------------------------------- per layer


@dataclass
class LayerStats:
    median: float
    min: float | None
    max: float | None
    valid_count: int
    nodata_count: int
    second_read: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def sample_order(n: int, max_windows: int, max_pixels: int, pixels_per_window: int) -> list[int]:
    """Indices of windows spread evenly over the layer, to read (and keep) first."""
    k = max(1, min(n, max_windows, max(1, max_pixels // max(pixels_per_window, 1))))
    return sorted({int(i) for i in np.linspace(0, n - 1, k).round()})


def bin_range(lo: float, hi: float) -> tuple[int, int]:
    """(lowest, highest) high-16 bin of the keys of values whose min and max are lo and hi.

    Keys are monotonic; a zero extreme is taken as -0.0 below and +0.0 above, since min/max
    may return either sign when both are present.
    """
    lo = np.float32(-0.0) if lo == 0 else np.float32(lo)
    hi = np.float32(0.0) if hi == 0 else np.float32(hi)
    keys = to_keys(np.array([lo, hi], dtype=np.float32))
    return int(keys[0] >> 16), int(keys[1] >> 16)


def layer_stats(
    layer: Layer, grid: Grid, progress: Callable[[int], None] | None = None
) -> LayerStats:
    """Median, min, max and counts of one layer: one read, plus a re-read of the scouted
    windows that can hold the median's bins (about a tenth of the layer on smooth data).
    """
    windows = layer_windows(grid, layer.block_shape)
    n = len(windows)
    per_window = int(windows[0].width * windows[0].height)
    spread = sample_order(n, max(SAMPLE_WINDOWS, n // SCOUT_FRACTION), n * per_window, 1)
    held = [spread[i] for i in sample_order(len(spread), SAMPLE_WINDOWS, SAMPLE_PIXELS, per_window)]
    held_set, in_front = set(held), set(spread)
    scouts = [i for i in spread if i not in held_set]
    rest = [i for i in range(n) if i not in in_front]

    totals = {"valid": 0, "nodata": 0, "min": np.inf, "max": -np.inf}
    ranges: dict[int, tuple[int, int]] = {}  # window -> high-16 bin range (8 bytes a window)

    def read(indices: Sequence[int], bins: Sequence[int] | None) -> Iterable[np.ndarray]:
        """First time (bins None): every window, accounted. Then: only those that can hold
        a key in ``bins`` (values near the median of a smooth layer lie in a band of them)."""
        if bins is not None:
            indices = [i for i in indices if any(ranges[i][0] <= b <= ranges[i][1] for b in bins)]
        for j, values, n_invalid in iter_layer_values(layer, [windows[i] for i in indices]):
            if bins is None:
                if progress is not None:
                    progress(values.size + n_invalid)
                totals["nodata"] += n_invalid
                totals["valid"] += values.size
                ranges[indices[j]] = (1, 0)  # empty: holds no bin
                if values.size:
                    lo, hi = float(values.min()), float(values.max())
                    totals["min"] = min(totals["min"], lo)
                    totals["max"] = max(totals["max"], hi)
                    ranges[indices[j]] = bin_range(lo, hi)
            yield values

    sample = list(read(held, None))
    try:
        median, missed = streaming_median(
            lambda bins: read(rest, bins), sample, lambda bins: read(scouts, bins)
        )
    except ValueError:
        raise InputError(
            f"layer '{layer.name}' ({layer.path}) has no valid pixel: every value is nodata"
        ) from None
    return LayerStats(
        median=float(median),
        min=totals["min"],
        max=totals["max"],
        valid_count=int(totals["valid"]),
        nodata_count=int(totals["nodata"]),
        second_read=missed,
    )


def compute_stats(
    layers: Sequence[Layer],
    grid: Grid,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> dict[str, LayerStats]:
    """Stats for every layer; layers run in parallel threads (GDAL reads release the GIL)."""

    def one(layer: Layer) -> LayerStats:
        result = layer_stats(layer, grid, progress)
        if result.second_read:
            log.info("layer '%s': the median needed a second read", layer.name)
        return result

    if workers <= 1 or len(layers) <= 1:
        results = [one(layer) for layer in layers]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(one, layers))
    return {layer.name: r for layer, r in zip(layers, results, strict=True)}
