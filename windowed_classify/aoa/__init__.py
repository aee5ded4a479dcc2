"""Area of applicability (AOA) and dissimilarity index (DI), Meyer & Pebesma (2021).

``build_aoa`` reads the training table and returns an ``AoaModel``; its ``predict(x)`` maps
filled feature rows to (DI float32, AOA uint8). The math is in ``method``, the table in
``training``. Only ``windowed_classify.errors`` is imported from the rest of the package.
"""

from __future__ import annotations

from .method import (
    AoaModel,
    aoa_threshold,
    fit_aoa,
    random_folds,
    resolve_weights,
    training_distances,
)
from .training import TrainingTable, build_aoa, parse_folds, read_training

__all__ = [
    "AoaModel",
    "TrainingTable",
    "aoa_threshold",
    "build_aoa",
    "fit_aoa",
    "parse_folds",
    "random_folds",
    "read_training",
    "resolve_weights",
    "training_distances",
]
