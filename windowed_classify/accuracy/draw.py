"""A stratified random sample drawn while streaming the map, never holding it.

The k-th pixel of a stratum is its k-th valid pixel in row-major order over the grid. Pass 1
counts each stratum's pixels N_h; ``draw_ranks`` draws n_h distinct ranks out of N_h for each
stratum (simple random sampling without replacement); pass 2 reads the map again in the same
row-major order and ``take`` picks, in each band of rows, the pixels whose rank was drawn.
Memory: the ranks drawn (a few per sample unit), whatever the map's size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def draw_ranks(
    rng: np.random.Generator, sizes: Sequence[int] | np.ndarray, n: Sequence[int] | np.ndarray
) -> list[np.ndarray]:
    """Per stratum, ``n[h]`` distinct ranks out of ``sizes[h]``, sorted (int64).

    ``Generator.choice`` without replacement: Floyd's algorithm (memory of the sample) when the
    sample is small against the stratum, a permutation of the stratum otherwise (memory of at
    most 50 times the sample)."""
    out = []
    for size, count in zip(sizes, n, strict=True):
        if count > size:
            raise ValueError(f"cannot draw {count} of {size} pixels")
        if count == 0:
            out.append(np.zeros(0, dtype=np.int64))
            continue
        ranks = rng.choice(int(size), size=int(count), replace=False)
        out.append(np.sort(np.asarray(ranks, dtype=np.int64)))
    return out


def take(ranks: np.ndarray, seen: int, count: int) -> np.ndarray:
    """The drawn ranks among a stratum's pixels ``seen`` .. ``seen + count - 1`` (the ones a
    band of rows holds), as positions 0 .. count - 1 within the band."""
    lo, hi = np.searchsorted(ranks, [seen, seen + count])
    return ranks[lo:hi] - seen
