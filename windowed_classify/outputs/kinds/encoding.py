"""How class probabilities (and the numbers made of them) are stored: whole percent in a
byte (255 masked) or float32 0-1 (NaN masked), as ``output.probabilities_dtype`` says."""

from __future__ import annotations

from typing import Any

import numpy as np
from rasterio.enums import Resampling

from ...config import OutputConfig


def proba_fill(dtype: str) -> float:
    """The masked value of a probability raster."""
    return 255 if dtype == "uint8" else float("nan")


def encode_proba(p: np.ndarray, dtype: str) -> np.ndarray:
    """Probabilities 0..1 -> uint8 whole percent (rounded half to even) or float32."""
    if dtype == "uint8":
        return np.rint(p * 100.0).astype(np.uint8)
    return p.astype(np.float32)


def proba_raster(out: OutputConfig) -> dict[str, Any]:
    """The RasterSpec fields every probability-like raster shares."""
    dtype = out.probabilities_dtype
    if dtype == "uint8":
        encoding = "percent 0-100, 255 = masked"
    else:
        encoding = "probability 0-1, NaN = masked"
    return {
        "dtype": dtype,
        "nodata": proba_fill(dtype),
        "overview": Resampling.average,
        "tags": {"encoding": encoding},
    }


def item_bytes(out: OutputConfig) -> int:
    return int(np.dtype(out.probabilities_dtype).itemsize)
