"""Exact medians equal pandas' `Series.median()` (float64, cast to float32), exactly: counted
against a guide's band in pieces (passes/band.py, what every run does), and by two reads of
key bits (passes/histogram.py, for a band that missed)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from checks import assert_run_matches, same_f32
from helpers import make_config, save_model, train_model, write_raster
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from medians import F32_MAX, F32_TINY, NEXT1, median_stack, pandas_median
from reference import reference_from_config

import windowed_classify
from windowed_classify.float_keys import BINS, high_bins, to_keys
from windowed_classify.passes.band import (
    LayerCounts,
    band_of,
    locate,
    low_bins,
    median_of,
    middle_ranks,
    value_at,
)
from windowed_classify.passes.histogram import exact_median

F32_NORMAL = float(np.finfo(np.float32).tiny)


def band_median(x: np.ndarray, chunk: int) -> np.float32:
    """The run's counting over pieces of ``chunk`` values: a guide of every third piece gives
    the band; each piece is counted against it and its keys inside kept; the median's bin is
    selected among the kept keys (or, when the band missed, two reads of key bits)."""
    pieces = [x[i : i + chunk] for i in range(0, x.size, chunk)]
    guide = np.concatenate(pieces[::3])
    band = band_of(np.bincount(high_bins(to_keys(guide)), minlength=BINS))
    total, kept = LayerCounts(), []
    for piece in pieces:
        counts = LayerCounts()
        kept.append(counts.add_values(piece, 0, band))
        total.merge(counts, band)
    found = locate(total, band, middle_ranks(total.valid))
    if found is None:
        return exact_median(x)
    keys = np.concatenate(kept)
    lows = low_bins(keys, sorted({b for b, _ in found}))
    return np.float32(median_of([value_at(b, lows[b], r) for b, r in found], total.valid))


def assert_same_median(x: np.ndarray, chunk: int) -> None:
    x = np.asarray(x, dtype=np.float32)
    expected = pandas_median(x)
    for got in (band_median(x.copy(), chunk), exact_median(x.copy())):
        check_median(x, got, expected, chunk)


def check_median(x: np.ndarray, got: np.float32, expected: np.float32, chunk: int) -> None:
    got32 = np.float32(got)
    assert not np.isnan(got32), f"NaN median for {x[:10]!r}..."
    zeros = x[x == 0]
    sign_tie = expected == 0 and bool(np.signbit(zeros).any()) and bool((~np.signbit(zeros)).any())
    if sign_tie:
        assert got32 == expected, f"median {got32!r} != {expected!r} (n={x.size}, chunk={chunk})"
    else:
        assert got32.view(np.uint32) == expected.view(np.uint32), (
            f"median {got32!r} (bits {got32.view(np.uint32):#010x}) != pandas {expected!r} "
            f"(bits {expected.view(np.uint32):#010x}); n={x.size}, chunk={chunk}"
        )


def _chunk_for(draw: st.DrawFn, n: int) -> int:
    low = max(1, n // 150)  # keep the number of chunks modest for big arrays
    return draw(st.integers(low, max(low, n + 3)))


any_f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
edge_f32 = st.sampled_from(
    [
        0.0,
        -0.0,
        F32_TINY,
        -F32_TINY,
        2 * F32_TINY,
        F32_NORMAL,
        -F32_NORMAL,
        1.0,
        -1.0,
        float(np.nextafter(np.float32(1), np.float32(2))),
        16777216.0,
        16777218.0,
        F32_MAX,
        -F32_MAX,
        3e38,
        -3e38,
        1e-40,
        0.1,
        1.5,
    ]
)


@st.composite
def arrays_and_chunks(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    kind = draw(st.sampled_from(["any", "edge", "pool", "near", "sorted", "mixed", "blocks"]))
    if kind == "blocks":
        # chunk-aligned pieces from different distributions: a sample of pieces can mislead
        chunk = draw(st.integers(1, 300))
        pattern = draw(st.lists(st.sampled_from("czwmn"), min_size=1, max_size=200))
        seed = draw(st.integers(0, 2**32 - 1))
        return _blocks(pattern, chunk, seed), chunk
    if kind == "any":
        x = draw(hnp.arrays(np.float32, st.integers(1, 400), elements=any_f32))
    elif kind == "edge":
        x = draw(hnp.arrays(np.float32, st.integers(1, 60), elements=edge_f32))
    elif kind == "pool":
        pool = draw(st.lists(any_f32, min_size=1, max_size=4))
        n = draw(st.integers(1, 3000))
        seed = draw(st.integers(0, 2**32 - 1))
        x = np.random.default_rng(seed).choice(np.array(pool, np.float32), n)
    elif kind == "near":
        base = np.float32(draw(any_f32))
        n = draw(st.integers(1000, 60000))
        seed = draw(st.integers(0, 2**32 - 1))
        steps = np.random.default_rng(seed).integers(-3, 4, n)
        x = np.array([base], np.float32)
        vals = {0: base}
        for k in range(1, 4):
            vals[k] = np.nextafter(vals[k - 1], np.float32(np.inf))
            vals[-k] = np.nextafter(vals[-k + 1], np.float32(-np.inf))
        table = np.array([vals[k] for k in range(-3, 4)], np.float32)
        x = table[steps + 3]
        assume(np.isfinite(x).all())
    elif kind == "sorted":
        # ordered data: the middle of the distribution sits in a few chunks only
        n = draw(st.integers(2, 20000))
        seed = draw(st.integers(0, 2**32 - 1))
        x = np.sort(np.random.default_rng(seed).normal(0, 1e3, n).astype(np.float32))
        if draw(st.booleans()):
            x = x[::-1].copy()
    else:
        n = draw(st.integers(2, 5000))
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        mags = rng.choice(np.array([1e-45, 1e-38, 1e-10, 1.0, 1e10, 1e30, 3.4e38]), n)
        x = (rng.choice([-1.0, 1.0], n) * mags * rng.random(n)).astype(np.float32)
        assume(np.isfinite(x).all())
    x = np.asarray(x, np.float32)
    return x, _chunk_for(draw, x.size)


def _blocks(pattern: str | list[str], chunk: int, seed: int) -> np.ndarray:
    """One chunk per letter: c = constant 0, z = signed zeros, w = wide positive spread,
    m = wide two-sided spread, n = narrow band near 1."""
    rng = np.random.default_rng(seed)
    pieces = []
    for letter in pattern:
        if letter == "c":
            pieces.append(np.zeros(chunk, np.float32))
        elif letter == "z":
            pieces.append(rng.choice(np.array([-0.0, 0.0], np.float32), chunk))
        elif letter == "w":
            pieces.append((np.abs(rng.standard_cauchy(chunk)) * 1e6 + 1).astype(np.float32))
        elif letter == "m":
            pieces.append((rng.standard_cauchy(chunk) * 1e6).astype(np.float32))
        else:
            pieces.append((1.0 + rng.random(chunk) * 1e-3).astype(np.float32))
    return np.concatenate(pieces)


@settings(max_examples=40, deadline=None)
@given(arrays_and_chunks())
def test_exact_median_matches_pandas(data: tuple[np.ndarray, int]) -> None:
    x, chunk = data
    assert_same_median(x, chunk)


@settings(max_examples=30, deadline=None)
@given(x=hnp.arrays(np.float32, st.integers(1, 200), elements=edge_f32), chunk=st.integers(1, 17))
def test_exact_median_edge_values_small_chunks(x: np.ndarray, chunk: int) -> None:
    assert_same_median(x, chunk)


NEXT2 = float(np.nextafter(np.float32(NEXT1), np.float32(2)))


@pytest.mark.parametrize(
    "values",
    [
        [1.0],
        [-0.0],
        [1.0, 2.0],
        [2.0, 1.0, 3.0],
        [-0.0, 0.0],
        [-0.0, -0.0],
        [0.0, -0.0, 0.0],
        [F32_MAX, F32_MAX],
        [-F32_MAX, -F32_MAX, 1.0, -F32_MAX],
        [-F32_MAX, F32_MAX],
        [F32_TINY, F32_TINY],
        [F32_TINY, 0.0],  # half of the smallest subnormal: ties to even -> 0
        [3 * F32_TINY, 0.0],
        [F32_TINY, F32_MAX],  # double rounding through float64
        [1.0, NEXT1],  # midpoint is a float32 tie -> even (1.0)
        [NEXT1, NEXT2],  # midpoint tie -> even (NEXT2)
        [16777216.0, 16777218.0],
        [5.0] * 7 + [6.0] * 7,
        [0.1, 0.2, 0.30000001, 0.4],
    ],
)
@pytest.mark.parametrize("chunk", [1, 2, 3, 65536])
def test_exact_median_cases(values: list[float], chunk: int) -> None:
    assert_same_median(np.array(values, np.float32), chunk)


def test_exact_median_returns_float32() -> None:
    got = exact_median(np.array([1.0, 4.0], np.float32))
    assert isinstance(got, np.float32) and got == np.float32(2.5)


def test_exact_median_empty_raises() -> None:
    with pytest.raises(ValueError):
        exact_median(np.array([], np.float32))


def test_exact_median_does_not_depend_on_chunking() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_cauchy(100_001).astype(np.float32)
    x[::7] = x[3]  # many ties
    expected = pandas_median(x)
    for chunk in (1000, 4097, 65536, 200_000):
        assert np.float32(band_median(x, chunk)).view(np.uint32) == expected.view(np.uint32)
    x2 = np.sort(x)
    for chunk in (999, 50_000):
        assert np.float32(band_median(x2, chunk)) == pandas_median(x2)


@pytest.mark.parametrize("chunk", [1, 7, 100])
@pytest.mark.parametrize(("pieces", "k"), [(130, 2), (150, 2), (200, 3), (640, 10), (1000, 15)])
def test_exact_median_when_sampled_chunks_mislead(chunk: int, pieces: int, k: int) -> None:
    # every k-th piece is constant 0, the others are spread above it: any sample of evenly
    # spaced pieces over-represents the zeros, while the middle ranks sit on the boundary
    pattern = ["c" if i % k == 0 else "w" for i in range(pieces)]
    assert_same_median(_blocks(pattern, chunk, pieces), chunk)
    pattern = ["z" if i % k == 0 else "m" for i in range(pieces)]
    assert_same_median(_blocks(pattern, chunk, pieces + 1), chunk)


# --------------------------------------------------------------------------- through a run


@pytest.mark.parametrize("workers", [1, 2])
def test_run_report_medians_equal_reference(tmp_path: Path, workers: int) -> None:
    h, w = 200, 58
    folder = tmp_path / "covariates"
    median_stack(folder, h, w)
    names = ["ramp", "split", "tiny", "huge", "ulp", "lone0", "lone1", "lone2", "lone3"]
    pools = {name: np.array([0.0, 1.0, 2.0, 1e30, -1e30], np.float32) for name in names}
    model = train_model(names, pools, ["a", "b", "c"], seed=3)
    model_path = save_model(model, tmp_path / "model.pkl")
    out = tmp_path / "out" / "pred.tif"
    out.parent.mkdir()
    config = make_config(
        folder,
        model_path,
        out,
        nodata={"values": [], "threshold": 9},
        processing={"memory_mb": 1, "workers": workers},
    )
    ref = reference_from_config(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = windowed_classify.run(config, quiet=True)
    for name in names:
        assert same_f32(report["layers"][name]["median"], ref.layers[name].median), name
    assert_run_matches(report, ref, out)


def test_run_median_when_sampled_windows_miss_it(tmp_path: Path) -> None:
    """A layer big enough that pass 1 cannot keep every window as its sample: the upper
    middle value is a lone value in one window, so a guess from a sample can miss it."""
    h, w = 8192, 1024
    folder = tmp_path / "covariates"
    rng = np.random.default_rng(7)
    lone = np.zeros((h, w), np.float32)
    lone[1::2] = (1e6 + rng.random((h // 2, w)) * 1e6).astype(np.float32)
    lone[65, 5] = 0.5  # the upper middle value (lower middle is 0): median 0.25
    write_raster(folder / "lone.tif", lone, layout=("striped", 16))
    other = rng.integers(0, 4, (h, w)).astype(np.uint8)
    write_raster(folder / "other.tif", other, layout=("tiled", 256))
    pools = {"lone": np.array([0.0, 0.5, 1.5e6], np.float32), "other": np.arange(4.0)}
    model = train_model(["lone", "other"], pools, ["a", "b"], seed=1)
    model_path = save_model(model, tmp_path / "model.pkl")
    out = tmp_path / "out" / "pred.tif"
    out.parent.mkdir()
    config = make_config(folder, model_path, out, nodata={"values": []})
    ref = reference_from_config(config)
    assert ref.layers["lone"].median == np.float32(0.25)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = windowed_classify.run(config, quiet=True)
    assert same_f32(report["layers"]["lone"]["median"], ref.layers["lone"].median)
    assert_run_matches(report, ref, out)


def test_the_band_keeps_exactly_the_keys_of_its_bins() -> None:
    """Counting against a band keeps every key whose high bin is in it and counts below every
    key under it, at the awkward edges too (zeros of both signs, infinities, subnormals)."""
    from windowed_classify.passes.band import Band, split

    rng = np.random.default_rng(7)
    specials = np.array(
        [-np.inf, np.inf, -0.0, 0.0, 1e-45, -1e-45, 3.4e38, -3.4e38, 1.0, -1.0], np.float32
    )
    values = np.concatenate(
        [
            specials,
            rng.standard_normal(5000).astype(np.float32) * 1e3,
            rng.standard_normal(500).astype(np.float32) * 1e-40,
        ]
    )
    keys = to_keys(values)
    edges = [0x007F, 0x0080, 0x7FFF, 0x8000, 0x8001, 0xBF80, 0xFF7F, 0xFF80]
    edges += [int(k >> 16) for k in rng.choice(keys, 20)]
    for first in edges:
        for last in edges:
            if last < first:
                continue
            below, kept = split(values, Band(first, last))
            bins = keys >> 16
            assert below == np.count_nonzero(bins < first), (first, last)
            expected = keys[(bins >= first) & (bins <= last)]
            assert np.array_equal(np.sort(kept), np.sort(expected)), (first, last)


def test_the_guide_samples_windows_on_a_grid_not_a_diagonal() -> None:
    """Evenly spaced indices of a row-major tile list walk a diagonal across the layer; the
    guide takes as many blocks on a grid of block rows and columns instead."""
    from windowed_classify.passes.guide import grid_sample

    for rows, cols in [(16, 16), (18, 18), (2, 40), (40, 3), (1, 30), (3, 3)]:
        blocks = [(c * 256, r * 256, 256, 256) for r in range(rows) for c in range(cols)]
        spread = list(range(min(16, len(blocks))))  # as many as the guide takes
        picks = grid_sample(blocks, len(spread))
        assert 0 < len(picks) <= len(spread) and len(set(picks)) == len(picks)
        at = [divmod(i, cols) for i in picks]
        if rows * cols <= len(spread):
            assert picks == list(range(rows * cols))
        elif rows >= 4 and cols >= 4:  # a grid: every picked row with every picked column
            assert len({r for r, _ in at}) * len({c for _, c in at}) == len(picks) >= 9
    spaced = np.linspace(0, 255, 16).round().astype(int)  # evenly spaced in the list
    diagonal = [divmod(int(i), 16) for i in spaced]
    assert len({r for r, _ in diagonal}) == len(diagonal)  # one block per row: a line
