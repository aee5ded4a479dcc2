"""How many sample units each stratum gets (Olofsson et al. 2014, sec. 5.1.1).

- ``sample_size``: the total n that gives a target standard error of the overall accuracy
  with stratified random sampling, their eq. 13: n = (sum_i W_i S_i / S(O))^2 with
  S_i = sqrt(U_i (1 - U_i)), W_i the stratum's share of the area and U_i the user's accuracy
  expected of it (rounded up).
- ``allocate``: ``olofsson`` (their recommendation: every stratum gets at least ``minimum``
  units, the rest are shared in proportion to area), ``proportional``, ``equal``, or explicit
  sizes. No stratum gets more units than it has pixels (what it cannot take goes to the
  others, in proportion); the shares are rounded by largest remainder (ties to the first
  stratum) so that they sum to n exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

METHODS = ("olofsson", "proportional", "equal")
DEFAULT_MINIMUM = 50


class AllocationError(ValueError):
    """The allocation asked for cannot be made (the message says why)."""


def sample_size(weights: npt.ArrayLike, expected_ua: npt.ArrayLike, target_se: float) -> int:
    """Olofsson et al. (2014) eq. 13: the n whose overall accuracy has standard error
    ``target_se``, for strata of area ``weights`` (any unit) and expected user's accuracies."""
    w = np.asarray(weights, dtype=np.float64)
    u = np.asarray(expected_ua, dtype=np.float64)
    if w.shape != u.shape:
        raise AllocationError(f"{len(u)} expected user's accuracies for {len(w)} strata")
    if not (0 < target_se < 1):
        raise AllocationError(f"the target standard error must be in (0, 1), not {target_se}")
    if np.any((u < 0) | (u > 1)):
        raise AllocationError("expected user's accuracies must be within [0, 1]")
    w = w / w.sum()
    root = float(np.sum(w * np.sqrt(u * (1.0 - u)))) / target_se
    return max(1, math.ceil(round(root * root, 9)))


def allocate(
    n: int,
    weights: npt.ArrayLike,
    capacity: npt.ArrayLike,
    method: str = "olofsson",
    minimum: int = DEFAULT_MINIMUM,
) -> np.ndarray:
    """Sample units per stratum (int64, summing to ``n``).

    ``weights``: the strata's areas (shares are proportional to them); ``capacity``: their
    pixel counts (a stratum never gets more units than it has pixels).
    """
    w = np.asarray(weights, dtype=np.float64)
    cap = np.asarray(capacity, dtype=np.int64)
    k = len(w)
    if k == 0:
        raise AllocationError("no strata: the map has no valid pixel")
    if n > int(cap.sum()):
        raise AllocationError(f"--n {n} is more than the {int(cap.sum())} pixels of the strata")
    if method == "olofsson":
        lower = np.minimum(minimum, cap)
        if int(lower.sum()) > n:
            raise AllocationError(
                f"--n {n} cannot give {k} strata at least {minimum} units each "
                f"({int(lower.sum())} in all): raise --n or lower --minimum"
            )
        return _capped_shares(n, w, lower, cap)
    if method == "proportional":
        return _capped_shares(n, w, np.zeros(k, dtype=np.int64), cap)
    if method == "equal":
        return _capped_shares(n, np.ones(k), np.zeros(k, dtype=np.int64), cap)
    raise AllocationError(f"unknown allocation {method!r}: one of {', '.join(METHODS)} or sizes")


def explicit(sizes: Sequence[int], capacity: npt.ArrayLike, names: Sequence[str]) -> np.ndarray:
    """Sizes given per stratum, checked against the strata's pixel counts."""
    cap = np.asarray(capacity, dtype=np.int64)
    out = np.asarray(list(sizes), dtype=np.int64)
    if len(out) != len(cap):
        raise AllocationError(
            f"--allocation gives {len(out)} sizes for {len(cap)} strata "
            f"({', '.join(names)}, in this order)"
        )
    for size, pixels, name in zip(out, cap, names, strict=True):
        if size < 0 or size > pixels:
            raise AllocationError(
                f"--allocation: stratum {name!r} has {int(pixels)} pixel(s); {int(size)} units "
                "cannot be drawn from it"
            )
    return out


def _capped_shares(n: int, weights: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Integers summing to ``n``, within [lower, upper], otherwise proportional to weights:
    x_h = clip(t w_h, lower_h, upper_h) with t found by bisection (the sum grows with t),
    then rounded by largest remainder."""
    if int(lower.sum()) > n or int(upper.sum()) < n:
        raise AllocationError(f"cannot allocate {n} units within the strata's bounds")
    w = np.where(weights > 0, weights, 0.0)
    if not np.any(w > 0):
        w = np.ones_like(w)

    def shares(t: float) -> np.ndarray:
        return np.clip(t * w, lower, upper).astype(np.float64)

    lo, hi = 0.0, float(np.max(upper / np.where(w > 0, w, np.inf))) + 1.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if shares(mid).sum() < n:
            lo = mid
        else:
            hi = mid
    x = shares(hi)
    out = np.minimum(np.floor(x + 1e-9), upper).astype(np.int64)
    rest = n - int(out.sum())
    order = np.argsort(-np.round(x - out, 9), kind="stable")  # ties: the first stratum
    for h in order:
        if rest <= 0:
            break
        if out[h] < upper[h]:
            out[h] += 1
            rest -= 1
    while rest < 0:  # numerical slack: take back from the largest
        h = int(np.argmax(np.where(out > lower, out - x, -np.inf)))
        out[h] -= 1
        rest += 1
    if int(out.sum()) != n:
        raise AllocationError(f"cannot allocate {n} units within the strata's bounds")
    return out
