"""The in-memory reference for the area of applicability: the formula, the obvious way.

Meyer & Pebesma (2021) as CAST's trainDI/aoa compute it: every pairwise distance at once
(n x n and m x n matrices), no blocks, no KD-tree. For small tables only. Nothing here
imports the package under test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class ReferenceAoa:
    mean_distance: float
    train_di: np.ndarray  # float64
    threshold: float
    di: np.ndarray  # float64 DI of the new rows
    aoa: np.ndarray  # uint8, 1 inside


def reference_random_folds(n: int, k: int, seed: int) -> np.ndarray:
    """The documented assignment: default_rng(seed).permutation(arange(n) % k)."""
    return np.random.default_rng(seed).permutation(np.arange(n) % k)


def reference_aoa(
    train: np.ndarray,
    new: np.ndarray,
    weights: Sequence[float] | None = None,
    folds: Sequence[object] | None = None,
) -> ReferenceAoa:
    train = np.asarray(train, dtype=np.float64)
    new = np.asarray(new, dtype=np.float64)
    n, p = train.shape
    w = np.ones(p) if weights is None else np.asarray(weights, dtype=np.float64)

    # R: scale(train) (sd with ddof 1), then times the weight; a constant column is 0
    mean = train.mean(axis=0)
    sd = train.std(axis=0, ddof=1)
    z = np.zeros_like(train)
    zn = np.zeros_like(new)
    for j in range(p):
        if sd[j] > 0:
            z[:, j] = (train[:, j] - mean[j]) / sd[j] * w[j]
            zn[:, j] = (new[:, j] - mean[j]) / sd[j] * w[j]

    dist = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(axis=-1))
    mean_distance = float(dist[np.triu_indices(n, k=1)].mean())

    masked = dist.copy()
    np.fill_diagonal(masked, np.inf)
    if folds is not None:
        labels = np.asarray(folds)
        masked[labels[:, None] == labels[None, :]] = np.inf
    train_di = masked.min(axis=1) / mean_distance

    q1 = np.quantile(train_di, 0.25)
    q3 = np.quantile(train_di, 0.75)
    threshold = float(min(q3 + 1.5 * (q3 - q1), train_di.max()))

    new_dist = np.sqrt(((zn[:, None, :] - z[None, :, :]) ** 2).sum(axis=-1))
    di = new_dist.min(axis=1) / mean_distance
    aoa = np.where(di > threshold, 0, 1).astype(np.uint8)  # CAST: ifelse(DI > thres, 0, 1)
    return ReferenceAoa(mean_distance, train_di, threshold, di, aoa)
