"""Exact medians by two reads of a layer: its keys counted by their high 16 bits (65,536
bins), then, in the median's bin(s), by their low 16 bits. For the rare layer whose median
lay outside the guide's band; memory is a few 65,536-bin counters whatever the raster's size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ..errors import InputError
from ..float_keys import BINS, from_key, high_bins, to_keys
from ..inputs.grid import Grid
from ..inputs.layers import Layer
from .band import low_bins, median_of, middle_ranks
from .counting import Histogram, HistogramJob
from .executor import Executor
from .stats import LayerStats, block_tasks


def bins_of(high: np.ndarray, ranks: Sequence[int]) -> list[tuple[int, int]]:
    """(high bin, rank inside it) of each rank of a high-bit histogram."""
    cum = np.cumsum(high)
    out = []
    for rank in ranks:
        b = int(np.searchsorted(cum, rank, side="right"))
        out.append((b, rank - (int(cum[b - 1]) if b else 0)))
    return out


def exact_median(values: np.ndarray) -> np.float32:
    """The same counting over an in-memory array of valid values (for tests and tools)."""
    values = np.asarray(values, dtype=np.float32).ravel()
    if values.size == 0:
        raise ValueError("no valid values")
    keys = to_keys(values)
    where = bins_of(np.bincount(high_bins(keys), minlength=BINS), middle_ranks(values.size))
    lows = low_bins(keys, sorted({b for b, _ in where}))
    picked = []
    for b, rank in where:
        low = int(np.searchsorted(np.cumsum(lows[b]), rank, side="right"))
        picked.append(from_key((b << 16) | low))
    return np.float32(median_of(picked, values.size))


def histogram_stats(
    layers: Sequence[Layer],
    grid: Grid,
    executor: Executor,
    token: str,
    progress: Callable[[int], object] | None = None,
) -> dict[str, LayerStats]:
    """Exact statistics of ``layers`` from two reads of each on the executor's workers."""
    job = HistogramJob(tuple(layers), token)
    tasks = [(j, windows) for j, layer in enumerate(layers) for windows in block_tasks(grid, layer)]
    totals = [Histogram("") for _ in layers]
    for t in totals:
        t.high = np.zeros(BINS, dtype=np.int64)
    for (j, _, _), got in executor.run(job, [(j, w, None) for j, w in tasks]):
        total = totals[j]
        total.valid += got.valid
        total.nodata += got.nodata
        total.min, total.max = min(total.min, got.min), max(total.max, got.max)
        assert total.high is not None and got.high is not None
        total.high += got.high
        if progress is not None:
            progress(got.valid + got.nodata)
    where: dict[int, list[tuple[int, int]]] = {}
    for j, (layer, total) in enumerate(zip(layers, totals, strict=True)):
        if total.valid == 0:
            raise InputError(
                f"layer '{layer.name}' ({layer.path}) has no valid pixel: every value is nodata"
            )
        assert total.high is not None
        where[j] = bins_of(total.high, middle_ranks(total.valid))
    wanted = {j: tuple(sorted({b for b, _ in where[j]})) for j in where}
    lows = {j: {b: np.zeros(BINS, dtype=np.int64) for b in bins} for j, bins in wanted.items()}
    for (j, _, _), got in executor.run(job, [(j, w, wanted[j]) for j, w in tasks]):
        for b, counts in got.low.items():
            lows[j][b] += counts
    out = {}
    for j, (layer, total) in enumerate(zip(layers, totals, strict=True)):
        picked = []
        for b, rank in where[j]:
            low = int(np.searchsorted(np.cumsum(lows[j][b]), rank, side="right"))
            picked.append(from_key((b << 16) | low))
        out[layer.name] = LayerStats(
            median=median_of(picked, total.valid),
            min=float(total.min),
            max=float(total.max),
            valid_count=int(total.valid),
            nodata_count=int(total.nodata),
            second_read=True,
        )
    return out
