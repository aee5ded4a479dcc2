"""What is counted in an output raster as it is written: class codes, a float band's
statistics, the AOA's inside and outside pixels."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import Any

import numpy as np
from rasterio.windows import Window

from .floatstats import FloatStats

READ_PIXELS = 1 << 22  # pixels per block when a raster is read back (16 MB of float32)


class ClassTally:
    """The pixel count of every class code, and of masked pixels."""

    def __init__(self, codes: Sequence[int], nodata: float):
        self.codes = np.asarray(codes, dtype=np.int64)
        self.nodata = nodata
        self.reset()

    def reset(self) -> None:
        self.counts = np.zeros(len(self.codes), dtype=np.int64)
        self.masked = 0

    def add(self, codes: np.ndarray) -> None:
        is_nodata = codes == self.nodata
        n_nodata = int(np.count_nonzero(is_nodata))
        self.masked += n_nodata
        valid = (codes[~is_nodata] if n_nodata else codes.ravel()).astype(np.int64, copy=False)
        low, high = (int(self.codes.min()), int(self.codes.max())) if self.codes.size else (0, 0)
        if high - low < 1 << 16:  # index codes, or labels close together: one bincount
            hist = np.bincount(valid - low, minlength=high - low + 1)
            self.counts += hist[self.codes - low]
        else:  # integer labels far apart (int32): count the codes present
            place = {int(c): i for i, c in enumerate(self.codes)}
            for code, n in zip(*np.unique(valid, return_counts=True), strict=True):
                self.counts[place[int(code)]] += n


class FloatTally:
    """Statistics of every band of a float raster (``FloatStats``), and its nodata pixels."""

    def __init__(self, nodata: float, dtype: str, bands: int, at_most: float | None = None):
        self.nodata = nodata
        self.stats = [FloatStats(nodata, dtype, at_most) for _ in range(bands)]
        self.reset()

    def reset(self) -> None:
        for stats in self.stats:
            stats.reset()
        self.masked = 0
        self.results: list[dict[str, Any]] | None = None  # each band's, once finished

    def add(self, data: np.ndarray) -> None:
        bands = data.reshape(len(self.stats), -1)
        for stats, band in zip(self.stats, bands, strict=True):
            stats.add(band)
        first = bands[0]
        nodata = np.isnan(first) if math.isnan(self.nodata) else first == self.nodata
        self.masked += int(np.count_nonzero(nodata))

    def finish(self, read: Callable[[int], Iterable[np.ndarray]]) -> list[dict[str, Any]]:
        """Each band's statistics; ``read(band)`` gives band ``band`` (1-based) once more."""
        self.results = [s.finish(partial(read, i)) for i, s in enumerate(self.stats, start=1)]
        return self.results


class InsideTally:
    """Pixels inside (1) and outside (0) the area of applicability."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.inside = 0
        self.outside = 0
        self.masked = 0

    def add(self, data: np.ndarray) -> None:
        self.inside += int(np.count_nonzero(data == 1))
        self.outside += int(np.count_nonzero(data == 0))


Tally = ClassTally | FloatTally | InsideTally


def blocks(ds: Any, band: int | None = None) -> Iterator[np.ndarray]:
    """A raster (all bands, or ``band``) read back in blocks of whole rows."""
    rows = max(1, READ_PIXELS // max(ds.width * (1 if band else ds.count), 1))
    for top in range(0, ds.height, rows):
        window = Window(0, top, ds.width, min(rows, ds.height - top))
        yield ds.read(band, window=window) if band else ds.read(window=window)
