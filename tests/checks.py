"""Assertions shared by the test modules: tool output vs the reference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from helpers import read_output, report_path_for
from reference import Reference


def f32(value: Any) -> np.float32:
    return np.float32(value)


def same_f32(a: Any, b: Any) -> bool:
    """Equal as float32 values and, unless both are zero, bit for bit."""
    a32, b32 = f32(a), f32(b)
    if a32 == 0 and b32 == 0:
        return True
    return bool(a32.view(np.uint32) == b32.view(np.uint32))


def assert_codes_equal(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.shape == expected.shape, f"shape {got.shape} != {expected.shape}"
    diff = np.argwhere(got != expected)
    if diff.size:
        sample = [
            f"(row {r}, col {c}): got {got[r, c]} expected {expected[r, c]}" for r, c in diff[:8]
        ]
        raise AssertionError(
            f"{len(diff)} of {got.size} pixels differ from the reference; " + "; ".join(sample)
        )


def assert_output_profile(
    output: Path, ref: Reference, *, dtype: str = "uint8", compress: str = "lzw"
) -> np.ndarray:
    arr, info = read_output(output)
    assert info["count"] == 1
    assert info["crs"] == ref.crs
    assert tuple(info["transform"]) == tuple(ref.transform)
    assert (info["width"], info["height"]) == (ref.width, ref.height)
    assert info["dtype"] == dtype
    assert info["nodata"] is not None and info["nodata"] == ref.out_nodata
    assert info["tiled"], "output GeoTIFF is not tiled"
    assert info["compress"] is not None and info["compress"].lower() == compress.lower()
    return arr


def assert_report(report: dict[str, Any], ref: Reference, output: Path) -> None:
    # the JSON beside the output holds the same content as the returned dict
    on_disk = json.loads(report_path_for(output).read_text())
    assert on_disk == json.loads(json.dumps(report))

    assert report["features"] == ref.features
    assert sorted(report["ignored_layers"]) == sorted(ref.ignored)
    grid = report["grid"]
    assert (grid["width"], grid["height"]) == (ref.width, ref.height)
    assert [float(v) for v in grid["transform"]] == [float(v) for v in tuple(ref.transform)[:6]]

    assert set(report["layers"]) == set(ref.features), "report layers != model layers"
    for name, expected in ref.layers.items():
        got = report["layers"][name]
        assert same_f32(got["median"], expected.median), (
            f"{name}: median {got['median']!r} != reference {float(expected.median)!r}"
        )
        assert same_f32(got["min"], expected.min), f"{name}: min {got['min']} != {expected.min}"
        assert same_f32(got["max"], expected.max), f"{name}: max {got['max']} != {expected.max}"
        assert got["valid_count"] == expected.valid_count, name
        assert got["nodata_count"] == expected.nodata_count, name

    assert report["legend"] == ref.legend

    counts = {str(k): int(v) for k, v in report["pixel_counts"].items()}
    assert sum(counts.values()) == ref.width * ref.height
    nonzero = {k: v for k, v in counts.items() if v}
    assert nonzero == ref.pixel_counts
    allowed = set(ref.legend) | {str(ref.out_nodata)}
    assert set(counts) <= allowed, f"pixel_counts has codes outside legend+nodata: {counts}"
    assert report["masked_pixels"] == int(ref.masked.sum())
    assert counts.get(str(ref.out_nodata), 0) == int(ref.masked.sum())

    for key in ("pass1_seconds", "pass2_seconds", "total_seconds"):
        assert isinstance(report["timing"][key], (int, float)) and report["timing"][key] >= 0
    assert isinstance(report["peak_memory_mb"], (int, float)) and report["peak_memory_mb"] > 0
    assert report["stats_cache"] in ("computed", "used", "partly used", "disabled", "journal")
    assert isinstance(report["windows"], int) and report["windows"] >= 1


def assert_run_matches(
    report: dict[str, Any],
    ref: Reference,
    output: Path,
    *,
    dtype: str = "uint8",
    compress: str = "lzw",
) -> None:
    arr = assert_output_profile(output, ref, dtype=dtype, compress=compress)
    assert_codes_equal(arr, ref.codes)
    assert_report(report, ref, output)


def assert_same_medians(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Two reports' layer statistics, bit for bit (medians as float32 bits)."""
    assert set(a["layers"]) == set(b["layers"])
    for name, layer in a["layers"].items():
        other = b["layers"][name]
        bits = [np.float32(v["median"]).view(np.uint32) for v in (layer, other)]
        assert bits[0] == bits[1], f"{name}: median {layer['median']} != {other['median']}"
        for key in ("min", "max"):
            assert same_f32(layer[key], other[key]), (name, key)
        for key in ("valid_count", "nodata_count"):
            assert layer[key] == other[key], (name, key)
