"""Every raster a run writes, described once (``RasterSpec``), and what is counted in each as
it is written (a ``Tally``): class codes, a float band's statistics, the AOA's 0/1.

The main raster (key ``path``) holds class codes or, for a regression, the predicted values;
the optional rasters are keyed by their key in the output section.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.enums import Resampling
from rasterio.windows import Window

from ..config import FLOAT_NODATA, OutputConfig
from ..models.legend import Legend
from .floatstats import FloatStats
from .results import AOA_NODATA, proba_fill

READ_PIXELS = 1 << 22  # pixels per block when a raster is read back (16 MB of float32)


@dataclass
class RasterSpec:
    """One output GeoTIFF: its bands, type, nodata, how it is described and styled."""

    key: str
    path: Path
    count: int
    dtype: str
    nodata: float
    overview: Resampling
    descriptions: tuple[str, ...]
    tags: dict[str, str] = field(default_factory=dict)
    band_tags: tuple[dict[str, str], ...] = ()
    statistics: bool = False  # a float raster: statistics in the report, a colour ramp
    styled_band: int = 0  # 0-based band the ramp is stretched on (quantiles: the median's)


def _encoding(dtype: str) -> str:
    return "percent 0-100, 255 = masked" if dtype == "uint8" else "probability 0-1, NaN = masked"


def raster_specs(out: OutputConfig, legend: Legend, task: str) -> list[RasterSpec]:
    """The rasters of ``out`` (dtype and nodata resolved for ``task``), main raster first."""
    regression = task == "regression"
    assert out.dtype is not None and out.nodata is not None
    specs = [
        RasterSpec(
            "path",
            out.path,
            1,
            out.dtype,
            out.nodata,
            Resampling.average if regression else Resampling.mode,
            ("prediction" if regression else "class",),
            statistics=regression,
        )
    ]
    proba = {
        "dtype": out.probabilities_dtype,
        "nodata": proba_fill(out.probabilities_dtype),
        "overview": Resampling.average,
        "tags": {"encoding": _encoding(out.probabilities_dtype)},
    }
    if out.probabilities is not None:
        pairs = list(zip(legend.output_codes, legend.labels, strict=True))
        specs.append(
            RasterSpec(
                "probabilities",
                out.probabilities,
                len(pairs),
                **proba,
                descriptions=tuple(str(label) for _, label in pairs),
                band_tags=tuple({"code": str(c), "label": str(label)} for c, label in pairs),
            )
        )
    for key in ("confidence", "entropy", "margin"):
        path = getattr(out, key)
        if path is not None:
            specs.append(RasterSpec(key, path, 1, **proba, descriptions=(key,)))
    floats = {
        "dtype": "float32",
        "nodata": FLOAT_NODATA,
        "overview": Resampling.average,
        "statistics": True,
    }
    if out.spread is not None:
        specs.append(
            RasterSpec(
                "spread",
                out.spread,
                1,
                descriptions=("spread",),
                **floats,
                tags={"meaning": "standard deviation of the members' predictions"},
            )
        )
    if out.quantiles is not None:
        levels = list(out.quantiles["levels"])
        middle = min(range(len(levels)), key=lambda i: abs(levels[i] - 0.5))
        specs.append(
            RasterSpec(
                "quantiles",
                out.quantiles["path"],
                len(levels),
                **floats,
                descriptions=tuple(f"quantile {q:g}" for q in levels),
                band_tags=tuple({"quantile": repr(float(q))} for q in levels),
                styled_band=middle,
            )
        )
    if out.di is not None:
        specs.append(RasterSpec("di", out.di, 1, descriptions=("dissimilarity index",), **floats))
    if out.aoa is not None:
        encoding = {"encoding": "1 = inside, 0 = outside, 255 = masked"}
        specs.append(
            RasterSpec(
                "aoa",
                out.aoa,
                1,
                "uint8",
                AOA_NODATA,
                Resampling.mode,
                ("area of applicability",),
                tags=encoding,
            )
        )
    return specs


# ----------------------------------------------------------------------------- tallies


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

    def __init__(self, spec: RasterSpec, threshold: float | None = None):
        self.nodata = spec.nodata
        self.stats = [FloatStats(spec.nodata, spec.dtype, threshold) for _ in range(spec.count)]
        self.reset()

    def reset(self) -> None:
        for stats in self.stats:
            stats.reset()
        self.masked = 0

    def add(self, data: np.ndarray) -> None:
        bands = data.reshape(len(self.stats), -1)
        for stats, band in zip(self.stats, bands, strict=True):
            stats.add(band)
        first = bands[0]
        nodata = np.isnan(first) if math.isnan(self.nodata) else first == self.nodata
        self.masked += int(np.count_nonzero(nodata))

    def finish(self, read: Callable[[int], Iterable[np.ndarray]]) -> list[dict[str, Any]]:
        """Each band's statistics; ``read(band)`` gives band ``band`` (1-based) once more."""
        return [s.finish(lambda i=i: read(i)) for i, s in enumerate(self.stats, start=1)]


class AoaTally:
    """Pixels inside (1) and outside (0) the area of applicability."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.inside = 0
        self.outside = 0

    def add(self, data: np.ndarray) -> None:
        self.inside += int(np.count_nonzero(data == 1))
        self.outside += int(np.count_nonzero(data == 0))


Tally = ClassTally | FloatTally | AoaTally


def blocks(ds: Any, band: int | None = None) -> Iterator[np.ndarray]:
    """A raster (all bands, or ``band``) read back in blocks of whole rows."""
    rows = max(1, READ_PIXELS // max(ds.width * (1 if band else ds.count), 1))
    for top in range(0, ds.height, rows):
        window = Window(0, top, ds.width, min(rows, ds.height - top))
        yield ds.read(band, window=window) if band else ds.read(window=window)
