"""float32 values as order-preserving uint32 keys: the exact medians of pass 1 and the exact
percentiles of float outputs count values by these keys' bits."""

from __future__ import annotations

import sys

import numpy as np

BINS = 1 << 16  # values of the top (or bottom) 16 bits of a key
SIGN = np.uint32(0x80000000)


def to_keys(values: np.ndarray) -> np.ndarray:
    """float32 -> uint32 keys whose unsigned order is the float order (-0.0 just below +0.0).

    Non-negative floats get their sign bit set; negative ones have every bit flipped.
    """
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    flip = (bits.view(np.int32) >> 31).view(np.uint32)  # all ones where negative
    return bits ^ (flip | SIGN)


HIGH_HALF = 1 if sys.byteorder == "little" else 0  # which uint16 of a uint32 holds bits 16-31


def high_bins(keys: np.ndarray) -> np.ndarray:
    """The high 16 bits of contiguous uint32 keys, as a uint16 view (no shift, no copy)."""
    return np.ascontiguousarray(keys).view(np.uint16)[HIGH_HALF::2]


def from_key(key: int) -> np.float32:
    k = np.uint32(key)
    bits = k & ~SIGN if k & SIGN else ~k
    return np.array([bits], dtype=np.uint32).view(np.float32)[0]


def order_keys(values: np.ndarray) -> np.ndarray:
    """Order-preserving unsigned keys of float32 (uint32) or float64 (uint64) values."""
    if values.dtype != np.float64:
        return to_keys(values)
    bits = np.ascontiguousarray(values).view(np.uint64)
    flip = (bits.view(np.int64) >> 63).view(np.uint64)
    return bits ^ (flip | np.uint64(1 << 63))


def from_order_key(key: int, dtype: np.dtype | str) -> np.floating:
    """The float32 or float64 value of an ``order_keys`` key."""
    if np.dtype(dtype) != np.float64:
        return from_key(key)
    k = np.uint64(key)
    sign = np.uint64(1 << 63)
    bits = k & ~sign if k & sign else ~k
    return np.array([bits], dtype=np.uint64).view(np.float64)[0]
