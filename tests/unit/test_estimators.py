"""The estimators against the papers' worked examples, to the papers' rounding, and against
each other (Stehman's reduce to Olofsson's when the strata are the map classes)."""

from __future__ import annotations

import numpy as np
import pytest

from windowed_classify.accuracy.estimators import Z95, StratumError, olofsson, stehman

# Olofsson et al. (2014), Table 8: sample counts [map][reference] and mapped pixels (30 m)
OLOFSSON_COUNTS = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
OLOFSSON_PIXELS = np.array([200_000, 150_000, 3_200_000, 6_450_000])
HA_PER_PIXEL = 0.09

# Stehman (2014), Table 2: per unit, stratum, map class and reference class (10 per stratum)
STEHMAN_STRATA = "AAAAAAAAAABBBBBBBBBBCCCCCCCCCCDDDDDDDDDD"
STEHMAN_MAP = "AAAAAAABBBABBBBBBBBBBBCCCCCCBBDDDDDDDDDD"
STEHMAN_REF = "AAAAACBABCABBBBBAABBCCCCCDDBBADDDDDDDCCB"
STEHMAN_SIZES = [40_000, 30_000, 20_000, 10_000]


def idx(text: str) -> np.ndarray:
    return np.array(["ABCD".index(ch) for ch in text])


def test_olofsson_2014_worked_example_accuracy() -> None:
    """Sec. 5 of the paper: user's 0.88 +- 0.07, 0.73 +- 0.10, 0.93 +- 0.04, 0.96 +- 0.02;
    producer's 0.75, 0.85, 0.93, 0.96; overall 0.95 +- 0.02."""
    a = olofsson(OLOFSSON_COUNTS, OLOFSSON_PIXELS)
    ua = [(0.88, 0.07), (0.73, 0.10), (0.93, 0.04), (0.96, 0.02)]
    for e, (value, half) in zip(a.users, ua, strict=True):
        assert round(e.estimate, 2) == value and round(Z95 * e.se, 2) == half
    assert [round(e.estimate, 2) for e in a.producers] == [0.75, 0.85, 0.93, 0.96]
    # the paper's producer's intervals of deforestation and stable forest: +-0.21, +-0.03
    assert round(Z95 * a.producers[0].se, 2) == 0.21
    assert round(Z95 * a.producers[2].se, 2) == 0.03
    # the other two follow the paper's eq. 7 (R's mapaccuracy gives the same: 0.254, 0.018)
    assert round(Z95 * a.producers[1].se, 3) == 0.254
    assert round(Z95 * a.producers[3].se, 3) == 0.018
    assert round(a.overall.estimate, 2) == 0.95 and round(Z95 * a.overall.se, 2) == 0.02


def test_olofsson_2014_worked_example_area() -> None:
    """Table 9 (area proportions) and the areas: 21,158 +- 6,158 ha (deforestation),
    11,686 +- 3,756, 285,770 +- 15,510, 581,386 +- 16,282 ha."""
    a = olofsson(OLOFSSON_COUNTS, OLOFSSON_PIXELS)
    assert round(a.matrix[0, 0], 4) == 0.0176 and round(a.matrix[0, 2], 4) == 0.0013
    assert round(a.matrix[1, 1], 4) == 0.0110 and round(a.matrix[2, 2], 4) == 0.2967
    assert round(a.matrix[3, 3], 4) == 0.6212
    assert [round(v, 4) for v in a.matrix.sum(axis=0)] == [0.0235, 0.0130, 0.3175, 0.6460]
    total_ha = OLOFSSON_PIXELS.sum() * HA_PER_PIXEL
    expected = [(21_158, 6_158), (11_686, 3_756), (285_770, 15_510), (581_386, 16_282)]
    for e, (area, half) in zip(a.area, expected, strict=True):
        assert round(e.estimate * total_ha) == area
        assert round(Z95 * e.se * total_ha) == half


def test_stehman_2014_table_2_example() -> None:
    """The paper's values: area proportions A 0.35, C 0.20; overall accuracy 0.63; user's
    accuracy of B 0.574, producer's 0.794; cell (B, C) 0.08; SEs: area A 0.082, area C 0.064,
    overall 0.085, user's B 0.125. The producer's SE of B is 0.117 by the paper's own
    equation (28); its Table 3 prints 0.114, having set one stratum's s2_x to 0."""
    e = stehman(idx(STEHMAN_STRATA), idx(STEHMAN_MAP), idx(STEHMAN_REF), STEHMAN_SIZES, 4)
    assert round(e.area[0].estimate, 2) == 0.35 and round(e.area[2].estimate, 2) == 0.20
    assert round(e.overall.estimate, 2) == 0.63
    assert round(e.users[1].estimate, 3) == 0.574 and round(e.producers[1].estimate, 3) == 0.794
    assert round(e.matrix[1, 2], 2) == 0.08
    assert round(e.area[0].se, 3) == 0.082 and round(e.area[2].se, 3) == 0.064
    assert round(e.overall.se, 3) == 0.085
    assert round(e.users[1].se, 3) == 0.125
    assert round(e.producers[1].se, 3) == 0.117


def test_stehman_producers_se_by_hand() -> None:
    """Eq. 28 for the producer's accuracy of B, term by term from the strata's sample
    moments (numpy's own var/cov), not through the estimator's code."""
    s, m, r = idx(STEHMAN_STRATA), idx(STEHMAN_MAP), idx(STEHMAN_REF)
    y = ((m == 1) & (r == 1)).astype(float)
    x = (r == 1).astype(float)
    sizes = np.array(STEHMAN_SIZES, dtype=float)
    ybar = np.array([y[s == h].mean() for h in range(4)])
    xbar = np.array([x[s == h].mean() for h in range(4)])
    big_r = (sizes @ ybar) / (sizes @ xbar)
    total = 0.0
    for h in range(4):
        yy, xx = y[s == h], x[s == h]
        cov = np.cov(yy, xx, ddof=1)
        z = cov[0, 0] + big_r**2 * cov[1, 1] - 2 * big_r * cov[0, 1]
        total += sizes[h] ** 2 * (1 - 10 / sizes[h]) * z / 10
    want = np.sqrt(total) / (sizes @ xbar)
    e = stehman(s, m, r, STEHMAN_SIZES, 4)
    assert e.producers[1].se == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stehman_with_map_strata_is_olofsson(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = 5
    sizes = rng.integers(1_000, 100_000, k).astype(float)
    n_h = rng.integers(2, 40, k)
    mapped = np.repeat(np.arange(k), n_h)
    reference = np.where(rng.random(len(mapped)) < 0.7, mapped, rng.integers(0, k, len(mapped)))
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (mapped, reference), 1)
    a = olofsson(counts, sizes)
    b = stehman(mapped, mapped, reference, sizes, k, fpc=False)
    pairs = [(a.overall, b.overall)]
    for mine, theirs in ((a.users, b.users), (a.producers, b.producers), (a.area, b.area)):
        pairs += list(zip(mine, theirs, strict=True))
    for x, y in pairs:
        if x.estimate is None:
            assert y.estimate is None
            continue
        assert x.estimate == pytest.approx(y.estimate, abs=1e-12)
        assert x.se == pytest.approx(y.se, abs=1e-12)
    assert np.allclose(a.matrix, b.matrix, atol=1e-15)
    # the finite population correction only shrinks the variances, by about n_h / N_h
    c = stehman(mapped, mapped, reference, sizes, k, fpc=True)
    assert c.overall.se <= b.overall.se and c.overall.se == pytest.approx(b.overall.se, rel=1e-2)


def test_a_stratum_needs_two_units() -> None:
    counts = np.array([[1, 0], [3, 30]])
    with pytest.raises(StratumError) as caught:
        olofsson(counts, [100, 900])
    assert caught.value.stratum == 0 and caught.value.units == 1
    with pytest.raises(StratumError):
        stehman(np.array([0, 1, 1]), np.array([0, 1, 1]), np.array([0, 1, 0]), [5, 5], 2)
    # a class nobody mapped (no pixels) needs no units: its user's accuracy is undefined
    a = olofsson(np.array([[5, 1, 0], [2, 9, 0], [0, 0, 0]]), [100, 900, 0])
    assert a.users[2].estimate is None and a.users[2].ci95() is None
    assert a.producers[2].estimate is None and a.area[2].estimate == 0.0
