"""The dissimilarity index (DI) and area of applicability (AOA) of Meyer & Pebesma (2021).

Pure math on arrays, as CAST (>= 1.0) ``trainDI``/``aoa`` compute it, with these choices:

- Scaling: training mean and standard deviation (ddof 1, R's ``sd``), then times the weight.
  A feature with zero standard deviation (constant in the training rows) contributes
  nothing: its scaled column is 0 for training and new rows alike. (CAST stops with "some
  variables in train seem to have no variance"; a model cannot have learnt anything from a
  constant feature, so ignoring it is the sensible reading, and a warning names it.)
- Training DI: distance to the nearest training row in another fold (no folds: the nearest
  other row; a duplicate row counts, at distance 0) divided by ``d̄``, the mean distance
  over all pairs i < j of training rows (folds ignored).
- Threshold: Q3 + 1.5 IQR of the training DIs (numpy's default, linear = R type 7 quantiles),
  capped at the largest training DI.
- New rows: DI = distance to the nearest training row (any fold) / ``d̄``; inside the AOA
  when DI <= threshold (CAST: ``ifelse(DI > threshold, 0, 1)``). A row with a non-finite
  value in any feature gets DI NaN and is outside.

All distances are float64. Nothing here builds an n x n matrix: pairwise work goes in blocks
of rows, O(block x n) memory.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError, ModelError

log = logging.getLogger(__name__)

# Working memory of one block of the pairwise pass (block x n arrays).
BLOCK_MB = 32.0


# ----------------------------------------------------------------------------- weights


def resolve_weights(
    spec: str | Mapping[str, Any] | None,
    features: Sequence[str],
    importances: Sequence[float] | np.ndarray | None = None,
) -> tuple[np.ndarray, str]:
    """(one weight per feature, in ``features`` order; how they were chosen).

    ``spec``: ``None`` (the model's importances when given, else equal), ``"importance"``,
    ``"equal"``, or a mapping feature -> weight naming every feature. Weights must be finite
    and >= 0, and not all 0.
    """
    features = list(features)
    if spec is None:
        spec = "importance" if importances is not None else "equal"
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key == "equal":
            return np.ones(len(features), dtype=np.float64), "equal"
        if key != "importance":
            raise ConfigError(
                f"aoa.weights: {spec!r} is not 'importance', 'equal' or a mapping feature -> weight"
            )
        if importances is None:
            raise ModelError(
                "aoa.weights: importance needs the model's feature_importances_, which this "
                "model does not have; use aoa.weights: equal or a mapping feature -> weight"
            )
        values = np.asarray(importances, dtype=np.float64).ravel()
        if values.size != len(features):
            raise ModelError(
                f"aoa.weights: the model has {values.size} feature importances for "
                f"{len(features)} features; use aoa.weights: equal or a mapping feature -> weight"
            )
        _check_weights(values, features, "the model's feature importance")
        return values, "importance"
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"aoa.weights: expected 'importance', 'equal' or a mapping feature -> weight, "
            f"got {type(spec).__name__}"
        )
    unknown = [str(k) for k in spec if k not in set(features)]
    if unknown:
        raise ConfigError(
            f"aoa.weights: {', '.join(map(repr, unknown))} not among the model's features "
            f"({', '.join(features)})"
        )
    missing = [f for f in features if f not in spec]
    if missing:
        raise ConfigError(
            f"aoa.weights: no weight for feature(s) {', '.join(map(repr, missing))}; "
            "give every model feature a weight (0 ignores it)"
        )
    values = np.empty(len(features), dtype=np.float64)
    for j, name in enumerate(features):
        value = spec[name]
        # bool is an int in Python; "true" as a weight is a typo, not 1
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ConfigError(f"aoa.weights: the weight of {name!r} is not a number: {value!r}")
        values[j] = float(value)
    _check_weights(values, features, "aoa.weights")
    return values, "given"


def _check_weights(values: np.ndarray, features: Sequence[str], what: str) -> None:
    error = ConfigError if what == "aoa.weights" else ModelError
    for name, value in zip(features, values, strict=True):
        if not math.isfinite(value) or value < 0:
            raise error(f"{what}: the weight of {name!r} is {value!r}; weights must be >= 0")
    if not np.any(values > 0):
        raise error(f"{what}: every weight is 0, so no feature would be used")


# ----------------------------------------------------------------------------- folds


def random_folds(n: int, k: int, seed: int = 0) -> np.ndarray:
    """Fold of each of ``n`` rows, 0..k-1: balanced (sizes differ by at most 1) and fixed by
    ``seed``: ``numpy.random.default_rng(seed).permutation(np.arange(n) % k)``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise ConfigError(f"aoa.folds: random: {k!r} must be a whole number of folds >= 2")
    if k > n:
        raise InputError(
            f"aoa.folds: random: {k} folds for {n} usable training row(s); at most one fold per row"
        )
    return np.random.default_rng(seed).permutation(np.arange(n) % k)


def fold_codes(labels: Sequence[Any] | np.ndarray, what: str = "the fold labels") -> np.ndarray:
    """Integer codes of fold labels; at least two distinct folds, else an error naming
    ``what`` (e.g. "column 'fold'"): every row needs a neighbour in another fold."""
    uniques, codes = np.unique(np.asarray(labels), return_inverse=True)
    if uniques.size < 2:
        only = repr(str(uniques[0])) if uniques.size else "none"
        raise InputError(
            f"aoa.folds: {what} holds a single fold ({only}) in the usable training rows, so "
            "no row has a neighbour in another fold; give at least two folds, or use "
            "folds: none or random: K"
        )
    return codes.astype(np.int64).ravel()


# ----------------------------------------------------------------------------- distances


def block_rows_for(n: int, block_mb: float = BLOCK_MB) -> int:
    """Rows per block so that the pairwise pass's block x n arrays fit in ``block_mb``."""
    per_row = 18 * max(n, 1)  # two float64 and two bool block x n arrays
    return int(max(1, min(max(n, 1), block_mb * 2**20 // per_row)))


def _block_distances(z_block: np.ndarray, z: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> None:
    """Euclidean distances block x n into ``out``, by exact differences (a duplicate row is
    at distance 0, which the |a|^2 + |b|^2 - 2ab shortcut does not guarantee)."""
    out.fill(0.0)
    for k in range(z.shape[1]):
        np.subtract(z_block[:, k, None], z[None, :, k], out=tmp)
        np.multiply(tmp, tmp, out=tmp)
        out += tmp
    np.sqrt(out, out=out)


def training_distances(
    z: np.ndarray, folds: np.ndarray | None, block_rows: int | None = None
) -> tuple[np.ndarray, float]:
    """(per training row: distance to its nearest row in another fold, or with no folds to
    its nearest other row; d̄ = mean distance over all pairs i < j, folds ignored).

    ``z`` is the scaled, weighted training matrix (n x p, float64). O(n² p) time, O(block x n)
    memory.
    """
    z = np.ascontiguousarray(z, dtype=np.float64)
    n = z.shape[0]
    if n < 2:
        raise InputError(f"the AOA needs at least 2 usable training rows, got {n}")
    # all-zero columns (weight 0 or constant) add exactly 0: skip them
    z = z[:, np.any(z != 0.0, axis=0)]
    step = block_rows or block_rows_for(n)
    nearest = np.empty(n, dtype=np.float64)
    total = 0.0
    cols = np.arange(n)
    for start in range(0, n, step):
        stop = min(n, start + step)
        rows = np.arange(start, stop)
        dist = np.empty((stop - start, n), dtype=np.float64)
        tmp = np.empty_like(dist)
        _block_distances(z[start:stop], z, dist, tmp)
        # pairs i < j only: each unordered pair once
        upper = cols[None, :] > rows[:, None]
        total += float(dist.sum(where=upper))
        dist[rows - start, rows] = np.inf  # a row is not its own neighbour
        if folds is not None:
            dist[folds[start:stop, None] == folds[None, :]] = np.inf
        nearest[start:stop] = dist.min(axis=1)
    return nearest, total / (n * (n - 1) / 2)


def aoa_threshold(train_di: np.ndarray) -> float:
    """Q3 + 1.5 IQR of the training DIs (linear quantiles, R type 7), capped at their max."""
    q1, q3 = np.quantile(train_di, [0.25, 0.75])
    return float(min(q3 + 1.5 * (q3 - q1), np.max(train_di)))


# ----------------------------------------------------------------------------- the model


@dataclass(eq=False)
class AoaModel:
    """What pass 2 needs to map DI and AOA: small, picklable, thread-safe.

    The KD-tree over the training rows is built on first use and never pickled, so each
    worker process rebuilds it once; concurrent ``di`` calls share it (queries are
    read-only; the build is guarded by a lock).
    """

    features: tuple[str, ...]
    mean: np.ndarray  # (p,) training means
    sd: np.ndarray  # (p,) training standard deviations, ddof 1
    weights: np.ndarray  # (p,) weights as resolved (before the zero-sd rule)
    train: np.ndarray  # (n, p) scaled and weighted training rows, float64
    mean_distance: float  # d̄
    threshold: float
    train_di: np.ndarray  # (n,) training DIs (nearest row in another fold / d̄)
    weights_source: str = "equal"  # importance | equal | given
    folds: str = "none"  # how the training DIs' neighbours were restricted, for the report
    rows_dropped: int = 0
    _tree: Any = field(default=None, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    @property
    def used(self) -> np.ndarray:
        """Features that move the DI: weight > 0 and sd > 0."""
        return (self.weights > 0) & (self.sd > 0)

    def scale(self, x: np.ndarray) -> np.ndarray:
        """Rows in the DI's space: (x - mean) / sd * weight, as float64; zero-sd columns 0."""
        x = np.asarray(x, dtype=np.float64)
        sd_ok = self.sd > 0
        # the order of operations is R's scale() then the weight; a non-finite value stays
        # non-finite (inf * 0 is nan), so its row is flagged like CAST's NA
        with np.errstate(invalid="ignore", over="ignore"):
            return (
                (x - self.mean) / np.where(sd_ok, self.sd, 1.0) * np.where(sd_ok, self.weights, 0.0)
            )

    def _kdtree(self) -> Any:
        tree = self._tree
        if tree is None:
            with self._lock:
                if self._tree is None:
                    from sklearn.neighbors import KDTree

                    self._tree = KDTree(self.train[:, self.used])
                tree = self._tree
        return tree

    def distances(self, x: np.ndarray) -> np.ndarray:
        """DI of each row of ``x`` (rows x p, the model's features in order) as float64."""
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise ValueError(
                f"expected rows x {len(self.features)} features ({', '.join(self.features)}), "
                f"got shape {x.shape}"
            )
        out = np.full(x.shape[0], np.nan, dtype=np.float64)
        if x.shape[0] == 0:
            return out
        z = self.scale(x)
        ok = np.isfinite(z).all(axis=1)
        if ok.any():
            dist, _ = self._kdtree().query(z[ok][:, self.used], k=1)
            out[ok] = dist[:, 0] / self.mean_distance
        return out

    def di(self, x: np.ndarray) -> np.ndarray:
        """DI of each row of ``x`` as float32 (NaN for a row with a non-finite value)."""
        return self.distances(x).astype(np.float32)

    def inside(self, di: np.ndarray) -> np.ndarray:
        """AOA membership: DI <= threshold (NaN: outside). Give float64 DIs for the exact mask."""
        with np.errstate(invalid="ignore"):
            return np.asarray(di) <= self.threshold

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(DI as float32, AOA as uint8 0/1), the AOA decided on the float64 DI."""
        di = self.distances(x)
        return di.astype(np.float32), self.inside(di).astype(np.uint8)

    def summary(self) -> dict[str, Any]:
        """Plain, JSON-ready facts for the run report."""
        q = np.quantile(self.train_di, [0.0, 0.25, 0.5, 0.75, 1.0])
        return {
            "features": list(self.features),
            "mean_distance": float(self.mean_distance),
            "threshold": float(self.threshold),
            "weights": {f: float(w) for f, w in zip(self.features, self.weights, strict=True)},
            "weights_source": self.weights_source,
            "constant_features": [f for f, s in zip(self.features, self.sd, strict=True) if s == 0],
            "training_rows_used": int(self.train.shape[0]),
            "training_rows_dropped": int(self.rows_dropped),
            "folds": self.folds,
            "training_di": {
                "min": float(q[0]),
                "q25": float(q[1]),
                "median": float(q[2]),
                "q75": float(q[3]),
                "max": float(q[4]),
                "mean": float(np.mean(self.train_di)),
            },
        }

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_tree"] = None  # rebuilt once per process: cheaper to build than to ship
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


def fit_aoa(
    train: np.ndarray,
    features: Sequence[str],
    weights: np.ndarray | Sequence[float] | None = None,
    folds: np.ndarray | Sequence[Any] | None = None,
    *,
    weights_source: str = "given",
    folds_description: str | None = None,
    rows_dropped: int = 0,
    block_rows: int | None = None,
) -> AoaModel:
    """The AOA model of training rows ``train`` (n x p, the model's features in order, finite).

    ``weights``: one per feature (None: all 1). ``folds``: one label per row (None: no folds);
    at least two distinct labels.
    """
    features = tuple(features)
    x = np.asarray(train, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(features):
        raise ValueError(f"training rows must be n x {len(features)}, got shape {x.shape}")
    n = x.shape[0]
    if n < 2:
        raise InputError(f"the AOA needs at least 2 usable training rows, got {n}")
    if not np.isfinite(x).all():
        raise ValueError("training rows must be finite (drop rows with empty values first)")
    if weights is None:
        w = np.ones(len(features), dtype=np.float64)
        weights_source = "equal"
    else:
        w = np.asarray(weights, dtype=np.float64).ravel()
        if w.size != len(features):
            raise ValueError(f"{w.size} weights for {len(features)} features")
        _check_weights(w, features, "aoa.weights")
    codes = None
    if folds is not None:
        labels = np.asarray(folds)
        if labels.shape != (n,):
            raise ValueError(f"{labels.shape} fold labels for {n} training rows")
        codes = fold_codes(labels, folds_description or "the fold labels")

    mean = x.mean(axis=0)
    sd = x.std(axis=0, ddof=1)
    constant = [f for f, s in zip(features, sd, strict=True) if s == 0]
    if constant:
        log.warning(
            "AOA: feature(s) %s are constant in the training rows: ignored in the DI",
            ", ".join(constant),
        )
    model = AoaModel(
        features=features,
        mean=mean,
        sd=sd,
        weights=w,
        train=np.empty((0, len(features))),
        mean_distance=math.nan,
        threshold=math.nan,
        train_di=np.empty(0),
        weights_source=weights_source,
        folds=_describe_folds(folds_description, codes),
        rows_dropped=int(rows_dropped),
    )
    if not model.used.any():
        raise InputError(
            "AOA: every feature with a weight > 0 is constant in the training rows, so the DI "
            f"would be 0 everywhere (constant: {', '.join(constant)})"
        )
    z = model.scale(x)
    nearest, dbar = training_distances(z, codes, block_rows)
    if not dbar > 0:  # cannot happen with a non-constant used feature; kept as a guard
        raise InputError(
            "AOA: all usable training rows are identical in the weighted features, so the "
            "mean distance d̄ is 0 and the DI undefined"
        )
    model.train = z
    model.mean_distance = dbar
    model.train_di = nearest / dbar
    model.threshold = aoa_threshold(model.train_di)
    return model


def _describe_folds(description: str | None, codes: np.ndarray | None) -> str:
    if codes is None:
        return description or "none"
    if description and description.startswith("random"):
        return description
    k = int(codes.max()) + 1
    return f"{description or 'given'} ({k} folds)"
