"""#14's config keys: the task, dtype and nodata by task, the uncertainty outputs, the aoa
section; every bad value a one-line ConfigError naming the key."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from windowed_classify.config import load_config
from windowed_classify.errors import ConfigError


def cfg(tmp_path: Path, output: dict[str, Any] | None = None, **sections: Any) -> Any:
    raw = {
        "rasters": {"folder": "cov"},
        "model": {"path": "m.pkl"},
        "output": {"path": "p.tif", **(output or {})},
        **sections,
    }
    return load_config(raw, base_dir=tmp_path)


def test_defaults_follow_the_task(tmp_path: Path) -> None:
    out = cfg(tmp_path).output
    assert out.dtype is None and out.nodata is None
    classes, values = out.for_task("classification"), out.for_task("regression")
    assert (classes.dtype, classes.nodata) == ("uint8", 255)
    assert (values.dtype, values.nodata) == ("float32", -9999.0)
    assert cfg(tmp_path).model.task == "auto"


def test_nan_nodata_and_float64_for_a_regression(tmp_path: Path) -> None:
    out = cfg(tmp_path, {"dtype": "float64", "nodata": "nan"}).output.for_task("regression")
    assert out.dtype == "float64" and math.isnan(out.nodata)
    with pytest.raises(ConfigError, match="output.nodata"):
        cfg(tmp_path, {"nodata": "nan"}).output.for_task("classification")


@pytest.mark.parametrize(
    "output,match",
    [
        ({"dtype": "uint8", "nodata": 300}, "output.nodata': 300 does not fit"),
        ({"nodata": "inf"}, "output.nodata': expected a finite number"),
        ({"quantiles": {"path": "q.tif", "levels": [0.5, 1.5]}}, r"levels\[1\]"),
        ({"quantiles": {"path": "q.tif", "levels": []}}, "output.quantiles.levels"),
        ({"quantiles": {"path": "q.tif", "levels": [0.5, 0.5]}}, "listed twice"),
        ({"quantiles": {"levels": [0.5]}}, "output.quantiles': expected a mapping with path"),
        ({"quantiles": {"path": "q.png"}}, "output.quantiles.path': expected a .tif"),
        ({"spread": "p.tif"}, "output.spread': .*also output.path"),
        ({"di": "di.tif"}, "output.di': the area of applicability needs"),
    ],
)
def test_bad_output_values(tmp_path: Path, output: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        cfg(tmp_path, output)


def test_quantiles_forms(tmp_path: Path) -> None:
    out = cfg(tmp_path, {"quantiles": "q.tif"}).output
    assert out.quantiles == {"path": tmp_path / "q.tif", "levels": (0.05, 0.5, 0.95)}
    out = cfg(tmp_path, {"quantiles": {"path": "q.tif", "levels": [0.1, "0.9"]}}).output
    assert out.quantiles["levels"] == (0.1, 0.9)
    assert out.named_rasters["quantiles"] == tmp_path / "q.tif"


@pytest.mark.parametrize(
    "aoa,expected",
    [
        ({"training": "t.csv"}, (None, "none", 0)),
        (
            {"training": "t.csv", "weights": "EQUAL", "folds": "random: 5", "seed": 3},
            ("equal", {"random": 5}, 3),
        ),
        (
            {"training": "t.csv", "weights": {"a": 1, "b": 0.5}, "folds": "block"},
            ({"a": 1.0, "b": 0.5}, "block", 0),
        ),
        ({"training": "t.csv", "folds": {"random": 2}}, (None, {"random": 2}, 0)),
    ],
)
def test_aoa_section(tmp_path: Path, aoa: dict[str, Any], expected: tuple) -> None:
    section = cfg(tmp_path, {"aoa": "a.tif"}, aoa=aoa).aoa
    assert section.training == tmp_path / "t.csv"
    assert (section.weights, section.folds, section.seed) == expected


@pytest.mark.parametrize(
    "aoa,match",
    [
        ({}, "missing required config key 'aoa.training'"),
        ({"training": "t.csv", "weights": "heavy"}, "aoa.weights"),
        ({"training": "t.csv", "weights": {"a": -1}}, "aoa.weights.a': expected a weight >= 0"),
        ({"training": "t.csv", "folds": {"random": 1}}, "aoa.folds.random"),
        ({"training": "t.csv", "folds": {"every": 2}}, "aoa.folds': expected none"),
        ({"training": "t.csv", "seed": -1}, "aoa.seed"),
        ({"training": "t.csv", "extra": 1}, "unknown config key 'aoa.extra'"),
    ],
)
def test_bad_aoa_values(tmp_path: Path, aoa: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        cfg(tmp_path, {"aoa": "a.tif"}, aoa=aoa)
