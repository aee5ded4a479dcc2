"""Streamed statistics of a float band equal numpy's on the whole band: percentiles and the
histogram exactly (float32 and float64), mean and std to float64 rounding."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference_outputs import float_statistics

from windowed_classify.outputs.floatstats import FloatStats


def streamed(values: np.ndarray, nodata: float, pieces: int, dtype: str = "float32") -> dict:
    stats = FloatStats(nodata, dtype)
    parts = np.array_split(values, pieces)
    for part in parts:
        stats.add(part)
    return stats.finish(lambda: iter(np.array_split(values, pieces + 1)))


def check(
    values: np.ndarray, nodata: float = -9999.0, pieces: int = 3, dtype: str = "float32"
) -> None:
    got = streamed(values, nodata, pieces, dtype)
    want = float_statistics(values, nodata)
    if want["count"] == 0:  # every value is nodata
        assert got == want
        return
    for key in ("count", "min", "max", "percentile_2", "percentile_98", "histogram"):
        assert got[key] == want[key], (key, got[key], want[key])
    # summed differently (windows merged): float64 rounding, relative to the values' size
    scale = max(abs(want["min"]), abs(want["max"]), 1e-300)
    assert np.isclose(got["mean"], want["mean"], rtol=1e-12, atol=1e-13 * scale)
    assert np.isclose(got["std"], want["std"], rtol=1e-9, atol=1e-13 * scale)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_random_values_with_nodata_nan_and_ties(dtype: str) -> None:
    rng = np.random.default_rng(1)
    values = np.round(rng.normal(10, 5, 50_001), 2).astype(dtype)
    values[rng.random(values.size) < 0.05] = -9999
    values[rng.random(values.size) < 0.01] = np.nan
    check(values, dtype=dtype, pieces=7)


def test_few_values_one_value_and_equal_values() -> None:
    for values in ([3.5], [1.0, 2.0], [7.25] * 11, [-0.0, 0.0, 0.0, -0.0, 1.0]):
        check(np.array(values, dtype=np.float32))


def test_an_empty_band_has_only_a_count() -> None:
    assert streamed(np.full(10, -9999, np.float32), -9999.0, 2) == {"count": 0}


def test_nan_nodata_keeps_every_finite_value() -> None:
    values = np.array([np.nan, -9999, 1, 2, np.inf], dtype=np.float32)
    got = streamed(values, float("nan"), 2)
    assert got["count"] == 3 and got["min"] == -9999


@given(
    st.lists(st.floats(-(2.0**100), 2.0**100, width=32), min_size=1, max_size=300),
    st.integers(1, 5),
)
def test_any_float32_values(values: list[float], pieces: int) -> None:
    check(np.array(values, dtype=np.float32), pieces=pieces)


@given(st.lists(st.floats(-1e12, 1e12), min_size=1, max_size=300), st.integers(1, 4))
def test_any_float64_values(values: list[float], pieces: int) -> None:
    """float64 interpolates in float64: any slip in numpy's virtual index shows here."""
    check(np.array(values, dtype=np.float64), pieces=pieces, dtype="float64")
