"""Stacks whose medians are hard to get exactly, and pandas' median to compare with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from helpers import write_raster

F32_MAX = float(np.finfo(np.float32).max)
F32_TINY = float(np.finfo(np.float32).smallest_subnormal)
NEXT1 = float(np.nextafter(np.float32(1), np.float32(2)))


def pandas_median(x: np.ndarray) -> np.float32:
    return np.float32(pd.Series(np.asarray(x, np.float32).astype(np.float64)).median())


def median_stack(folder: Path, h: int, w: int) -> None:
    n = h * w
    rng = np.random.default_rng(42)
    # ascending ramp: the middle values sit in the middle rows only
    ramp = np.arange(n, dtype=np.float32).reshape(h, w) * np.float32(0.25)
    write_raster(folder / "ramp.tif", ramp, layout=("tiled", 16))
    # top half huge negatives, bottom half distinct small values; one nodata per row
    split = np.where(
        np.arange(n).reshape(h, w) < n // 2,
        np.float32(-1e30),
        rng.random((h, w)).astype(np.float32),
    )
    split[:, 0] = -9999.0
    write_raster(folder / "split.tif", split, nodata=-9999.0, layout=("striped", 5))
    # subnormals and signed zeros
    tiny = rng.choice(np.array([-0.0, 0.0, F32_TINY, -F32_TINY, 2 * F32_TINY], np.float32), (h, w))
    write_raster(folder / "tiny.tif", tiny, layout=("tiled", 32))
    # huge magnitudes, even count, middle pair (F32_MAX, F32_MAX): float32 sums overflow
    huge = rng.choice(
        np.array([F32_MAX, -F32_MAX, 3e38, 1.0], np.float32), (h, w), p=[0.6, 0.1, 0.2, 0.1]
    )
    huge[0, :2] = np.nan  # keep the valid count even when n is even
    write_raster(folder / "huge.tif", huge, layout=("striped", 1))
    # two values one ulp apart, equally often: the median is a float32 tie
    ulp = np.where(np.arange(n).reshape(h, w) % 2 == 0, np.float32(1.0), np.float32(NEXT1))
    write_raster(folder / "ulp.tif", ulp, layout=("tiled", 16))
    # half zeros, half large values, and one lone value that is the upper middle one: a
    # sample of windows that misses its row cannot guess the median (second read needed)
    for j, row in enumerate((1, h // 3 + 1, h // 2 + 1, 2 * h // 3 + 1)):
        flat = np.concatenate(
            [np.zeros(n // 2, np.float32), (1e6 + rng.random(n - n // 2) * 1e6).astype(np.float32)]
        )
        flat = rng.permutation(flat)
        large_at = np.flatnonzero(flat > 0)
        flat[large_at[0]] = flat[row * w + 3]
        flat[row * w + 3] = np.float32(0.5)
        write_raster(folder / f"lone{j}.tif", flat.reshape(h, w), layout=("striped", 1))
