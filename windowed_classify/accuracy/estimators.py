"""Design-based estimators of accuracy and area from a stratified random sample.

Notation: K classes (the map's); the error matrix is [map class i][reference class j].

``olofsson`` (strata = map classes): Olofsson et al. (2014), Remote Sens. Environ. 148:42-57,
the stratified estimator from the sample counts n_ij and the strata's area shares W_i:

- p_ij = W_i n_ij / n_i.  (the error matrix in area proportions)
- overall accuracy O = sum_j p_jj, V(O) = sum_i W_i^2 U_i (1 - U_i) / (n_i. - 1)
- user's accuracy U_i = p_ii / p_i., V(U_i) = U_i (1 - U_i) / (n_i. - 1)
- producer's accuracy P_j = p_jj / p_.j, V(P_j) = [N_j.^2 (1 - P_j)^2 U_j (1 - U_j) / (n_j. - 1)
  + P_j^2 sum_{i != j} N_i.^2 (n_ij / n_i.) (1 - n_ij / n_i.) / (n_i. - 1)] / N_.j^2, with
  N_i. the mapped size of class i and N_.j = sum_i N_i. n_ij / n_i. (their eq. 7)
- area proportion of class k p_.k = sum_i p_ik,
  V(p_.k) = sum_i W_i^2 (n_ik / n_i.) (1 - n_ik / n_i.) / (n_i. - 1)

No finite population correction, as in the paper.

``stehman`` (strata of any kind): Stehman (2014), Int. J. Remote Sens. 35:4923-4939. Each
quantity is the mean of a per-unit variable y_u over the population (a proportion: overall
accuracy y_u = [map = reference], the area of class k y_u = [reference = k], a cell (i, j) of
the error matrix y_u = [map = i and reference = j]), or a ratio of two such totals (user's
accuracy of i: y_u = [map = reference = i] over x_u = [map = i]; producer's accuracy of j:
y_u = [map = reference = j] over x_u = [reference = j]). With N_h units in stratum h, n_h of
them sampled, sample means ybar_h, variances s2_yh, s2_xh and covariance s_xyh:

- Y = sum_h N_h ybar_h, proportion Y / N,
  V = (1 / N^2) sum_h N_h^2 (1 - n_h / N_h) s2_yh / n_h   (his eq. 25)
- R = Y / X, V(R) = (1 / X^2) sum_h N_h^2 (1 - n_h / N_h)
  (s2_yh + R^2 s2_xh - 2 R s_xyh) / n_h   (his eq. 28)

When the strata are the map classes and the correction (1 - n_h / N_h) is left out, these are
the ``olofsson`` estimators, value for value (tests/unit/test_estimators.py checks it).

A stratum with units in the population needs at least 2 sample units: its variance is
undefined otherwise (``StratumError``). Undefined estimates (the user's accuracy of a class
nobody mapped, the producer's accuracy of a class no reference unit has) are None.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Z95 = 1.96  # the normal quantile both papers use for 95% intervals


class StratumError(ValueError):
    """A stratum with pixels has fewer than 2 sample units."""

    def __init__(self, stratum: int, units: int) -> None:
        super().__init__(f"stratum {stratum} has {units} sample unit(s): at least 2 are needed")
        self.stratum, self.units = stratum, units


@dataclass(frozen=True)
class Estimate:
    estimate: float | None
    se: float | None

    def ci95(self, z: float = Z95) -> tuple[float, float] | None:
        """The symmetric normal interval estimate +- z se (not clipped to [0, 1])."""
        if self.estimate is None or self.se is None:
            return None
        return self.estimate - z * self.se, self.estimate + z * self.se


@dataclass
class Accuracy:
    estimator: str  # "olofsson2014" or "stehman2014"
    overall: Estimate
    users: list[Estimate]  # per class, as mapped
    producers: list[Estimate]  # per class, as referenced
    area: list[Estimate]  # proportion of the area of each class (by the reference)
    matrix: np.ndarray  # (K, K) estimated area proportions [map][reference]
    counts: np.ndarray  # (K, K) sample counts [map][reference]


def _check_strata(sizes: np.ndarray, units: np.ndarray) -> None:
    for h in np.flatnonzero((sizes > 0) & (units < 2)):
        raise StratumError(int(h), int(units[h]))


def _est(value: float, variance: float) -> Estimate:
    if not np.isfinite(value):
        return Estimate(None, None)
    if not np.isfinite(variance):
        return Estimate(float(value), None)
    return Estimate(float(value), float(np.sqrt(max(variance, 0.0))))


# ----------------------------------------------------------------------------- Olofsson 2014


def olofsson(counts: np.ndarray, sizes: npt.ArrayLike) -> Accuracy:
    """Strata = map classes: ``counts[i, j]`` sample units mapped i and referenced j,
    ``sizes[i]`` the mapped area (or pixel count) of class i."""
    c = np.asarray(counts, dtype=np.float64)
    size = np.asarray(sizes, dtype=np.float64)
    k = len(size)
    n_i = c.sum(axis=1)
    _check_strata(size, n_i)
    w = size / size.sum()
    sampled = n_i > 0
    share = np.zeros_like(c)  # n_ij / n_i.
    share[sampled] = c[sampled] / n_i[sampled, None]
    p = w[:, None] * share
    dof = np.where(n_i > 1, n_i - 1, np.inf)  # strata without units add nothing

    diag = np.diag(share)
    overall = _est(float(np.trace(p)), float(np.sum(w**2 * diag * (1 - diag) / dof)))
    users = [
        _est(float(diag[i]), float(diag[i] * (1 - diag[i]) / dof[i]))
        if sampled[i]
        else Estimate(None, None)
        for i in range(k)
    ]
    col = p.sum(axis=0)
    cell_var = w[:, None] ** 2 * share * (1 - share) / dof[:, None]  # (K, K)
    area = [_est(float(col[j]), float(cell_var[:, j].sum())) for j in range(k)]
    producers = []
    for j in range(k):
        if col[j] <= 0:
            producers.append(Estimate(None, None))
            continue
        pa = p[j, j] / col[j]
        first = w[j] ** 2 * (1 - pa) ** 2 * diag[j] * (1 - diag[j]) / dof[j]
        others = sum(cell_var[i, j] for i in range(k) if i != j)
        producers.append(_est(pa, (first + pa**2 * others) / col[j] ** 2))
    return Accuracy(
        "olofsson2014", overall, users, producers, area, p, np.asarray(counts, dtype=np.int64)
    )


# ----------------------------------------------------------------------------- Stehman 2014


@dataclass
class _Strata:
    """Per-stratum sample moments of unit variables, and the design's sizes."""

    onehot: np.ndarray  # (n units, H)
    units: np.ndarray  # n_h
    sizes: np.ndarray  # N_h (weights)
    factor: np.ndarray  # N_h^2 (1 - f_h) / n_h; 0 where the stratum has no unit

    def means(self, y: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return (self.onehot.T @ y) / self.units[:, None]

    def comoments(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Sample covariances of the columns of y and x within each stratum (H, q)."""
        my, mx = np.nan_to_num(self.means(y)), np.nan_to_num(self.means(x))
        h = self.onehot.argmax(axis=1)
        dev = (y - my[h]) * (x - mx[h])
        dof = np.where(self.units > 1, self.units - 1, 1)
        return (self.onehot.T @ dev) / dof[:, None]

    def total(self, y: np.ndarray) -> np.ndarray:
        return self.sizes @ np.nan_to_num(self.means(y))


def _strata(
    strata: np.ndarray, sizes: np.ndarray, population: npt.ArrayLike | None, fpc: bool
) -> _Strata:
    h_count = len(sizes)
    onehot = np.zeros((len(strata), h_count))
    onehot[np.arange(len(strata)), strata] = 1.0
    units = onehot.sum(axis=0)
    _check_strata(sizes, units)
    pop = sizes if population is None else np.asarray(population, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        keep = 1.0 - units / pop if fpc else np.ones(h_count)
        factor = np.where(units > 0, sizes**2 * keep / units, 0.0)
    return _Strata(onehot, units, sizes, factor)


def _proportions(s: _Strata, y: np.ndarray) -> list[Estimate]:
    n_total = s.sizes.sum()
    value = s.total(y) / n_total
    var = (s.factor @ s.comoments(y, y)) / n_total**2
    return [_est(float(v), float(e)) for v, e in zip(value, var, strict=True)]


def _ratios(s: _Strata, y: np.ndarray, x: np.ndarray) -> list[Estimate]:
    ty, tx = s.total(y), s.total(x)
    out = []
    syy, sxx, sxy = s.comoments(y, y), s.comoments(x, x), s.comoments(y, x)
    for q in range(y.shape[1]):
        if tx[q] <= 0:
            out.append(Estimate(None, None))
            continue
        r = ty[q] / tx[q]
        z = syy[:, q] + r**2 * sxx[:, q] - 2 * r * sxy[:, q]
        out.append(_est(r, float(s.factor @ z) / tx[q] ** 2))
    return out


def stehman(
    strata: np.ndarray,
    mapped: np.ndarray,
    reference: np.ndarray,
    sizes: npt.ArrayLike,
    n_classes: int,
    population: npt.ArrayLike | None = None,
    fpc: bool = True,
) -> Accuracy:
    """Strata of any kind: per sample unit its stratum index, map class and reference class
    (0-based); ``sizes[h]`` the size of stratum h (pixels or area: the weights N_h);
    ``population[h]`` its pixel count for the finite population correction (default: sizes).
    """
    h = np.asarray(strata, dtype=np.int64)
    m = np.asarray(mapped, dtype=np.int64)
    r = np.asarray(reference, dtype=np.int64)
    k = n_classes
    s = _strata(h, np.asarray(sizes, dtype=np.float64), population, fpc)
    classes = np.arange(k)
    is_map = (m[:, None] == classes).astype(np.float64)  # (n, K)
    is_ref = (r[:, None] == classes).astype(np.float64)
    agree = is_map * is_ref  # [map = reference = k]
    overall = _proportions(s, (m == r).astype(np.float64)[:, None])[0]
    area = _proportions(s, is_ref)
    # cell (i, j): sum_h N_h (units of h mapped i, referenced j) / n_h, over N
    per_unit = s.sizes[h] / s.units[h] / s.sizes.sum()
    matrix = np.zeros((k, k))
    np.add.at(matrix, (m, r), per_unit)
    users = _ratios(s, agree, is_map)
    producers = _ratios(s, agree, is_ref)
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (m, r), 1)
    return Accuracy("stehman2014", overall, users, producers, area, matrix, counts)
