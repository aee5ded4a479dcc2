"""Sample size and allocation (Olofsson et al. 2014, sec. 5.1.1) and the within-stratum
rank picking of the streamed draw."""

from __future__ import annotations

import numpy as np
import pytest

from windowed_classify.accuracy.allocation import (
    AllocationError,
    allocate,
    explicit,
    sample_size,
)
from windowed_classify.accuracy.draw import draw_ranks, take

PIXELS = [200_000, 150_000, 3_200_000, 6_450_000]  # Olofsson et al. (2014), sec. 5


def test_sample_size_of_the_worked_example() -> None:
    """Sec. 5.1.1: a standard error of 0.01 for the overall accuracy, with user's accuracies
    expected of 0.70, 0.60, 0.90 and 0.95, takes n = 641."""
    assert sample_size(PIXELS, [0.70, 0.60, 0.90, 0.95], 0.01) == 641
    # n grows as 1 / S^2 (each rounded up once: 640.5 -> 641, 2562.2 -> 2563)
    assert sample_size(PIXELS, [0.70, 0.60, 0.90, 0.95], 0.005) == 2563
    # equal expected accuracies: n = U (1 - U) / S^2 whatever the weights
    assert sample_size([1, 5, 100], [0.8] * 3, 0.02) == 400


def test_olofsson_allocation_gives_the_minimum_then_shares_by_area() -> None:
    n = allocate(641, PIXELS, PIXELS, "olofsson", 50)
    assert int(n.sum()) == 641
    assert list(n[:2]) == [50, 50]
    # the other 541 in proportion to area: 541 x 0.32 / 0.965 = 179.4, x 0.645 / 0.965 = 361.6
    assert list(n[2:]) == [179, 362]
    # 441 left: 146.2 and 294.8
    assert list(allocate(641, PIXELS, PIXELS, "olofsson", 100)) == [100, 100, 146, 295]


def test_proportional_equal_and_caps() -> None:
    assert list(allocate(100, PIXELS, PIXELS, "proportional")) == [2, 2, 32, 64]
    assert list(allocate(10, [1, 1, 1], [100, 100, 100], "equal")) == [4, 3, 3]
    # a stratum smaller than its share is taken whole; the rest goes to the others
    n = allocate(120, [1, 1, 1], [10, 1000, 1000], "olofsson", 50)
    assert list(n) == [10, 55, 55]
    with pytest.raises(AllocationError, match="more than the 30 pixels"):
        allocate(31, [1, 1, 1], [10, 10, 10])
    with pytest.raises(AllocationError, match="at least 50 units"):
        allocate(120, [1, 1, 1], [1000, 1000, 1000], "olofsson", 50)
    assert list(explicit([5, 6], [10, 10], ["a", "b"])) == [5, 6]
    with pytest.raises(AllocationError, match="stratum 'b' has 10 pixel"):
        explicit([5, 11], [10, 10], ["a", "b"])
    with pytest.raises(AllocationError, match="2 sizes for 3 strata"):
        explicit([5, 6], [10, 10, 10], ["a", "b", "c"])


def test_ranks_are_distinct_sorted_and_reproducible() -> None:
    ranks = draw_ranks(np.random.default_rng(3), [10, 1_000_000, 7], [10, 500, 0])
    assert list(ranks[0]) == list(range(10))
    assert len(set(ranks[1])) == 500 and np.all(np.diff(ranks[1]) > 0)
    assert ranks[1].max() < 1_000_000 and ranks[2].size == 0
    again = draw_ranks(np.random.default_rng(3), [10, 1_000_000, 7], [10, 500, 0])
    assert all(np.array_equal(a, b) for a, b in zip(ranks, again, strict=True))


def test_take_splits_the_ranks_among_bands() -> None:
    ranks = np.array([0, 3, 4, 9, 10, 15])
    bands = [4, 6, 1, 5]  # a stratum's pixels in four bands of rows
    seen, got = 0, []
    for count in bands:
        got.append(list(take(ranks, seen, count) + seen))
        seen += count
    assert got == [[0, 3], [4, 9], [10], [15]]
