"""`design`: the allocation drawn exactly, a sample uniform within its strata, reproducible
by seed, written as points to label plus the design that `assess` reads back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import OLOFSSON_NAMES, olofsson_map, run_main, write_legend_csv, write_raster
from rasterio.transform import from_origin
from scipy.stats import chisquare

from windowed_classify.commands.assess import assess
from windowed_classify.commands.design import design

T = from_origin(500_000.0, 6_000_000.0, 10.0, 10.0)


def pixels_of(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    cols = np.floor((frame["x"].astype(float).to_numpy() - T.c) / T.a).astype(int)
    rows = np.floor((frame["y"].astype(float).to_numpy() - T.f) / T.e).astype(int)
    return rows, cols


def patchy_map(
    folder: Path, size: int = 300, layout: tuple[str, int] = ("tiled", 64)
) -> tuple[Path, np.ndarray]:
    """Three classes in irregular patches, a nodata hole; tiles that split the rows."""
    rng = np.random.default_rng(11)
    coarse = rng.integers(0, 3, (size // 10 + 1, size // 10 + 1))
    data = np.kron(coarse, np.ones((10, 10), dtype=np.int64))[:size, :size].astype(np.uint8) + 1
    data[(rng.random((size, size)) < 0.2)] = 2  # speckle: strata interleave within rows
    data[100:120, 50:250] = 0  # nodata
    path = write_raster(folder / "classes.tif", data, nodata=0, layout=layout, transform=T)
    write_legend_csv(path, {1: "crop", 2: "forest", 3: "water"})
    return path, data


def test_the_allocation_is_drawn_exactly_from_valid_pixels(tmp_path: Path) -> None:
    map_path, data = patchy_map(tmp_path)
    out = tmp_path / "sample.csv"
    proc = run_main("design", map_path, "--n", "300", "--minimum", "60", "--seed", "5", "-o", out)
    assert proc.returncode == 0, proc.stderr
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(got.columns) == ["point_id", "stratum", "map_class", "reference", "x", "y"]
    assert list(got["point_id"]) == [str(i) for i in range(1, 301)]
    assert (got["reference"] == "").all()
    sizes = {
        name: int((data == code).sum()) for code, name in ((1, "crop"), (2, "forest"), (3, "water"))
    }
    plan = json.loads((tmp_path / "sample.design.json").read_text())
    drawn = got["stratum"].value_counts().to_dict()
    assert drawn == {s["name"]: s["sample_size"] for s in plan["strata"]}
    assert {s["name"]: s["pixels"] for s in plan["strata"]} == sizes
    # at least 60 each, the rest in proportion to area (the 10 m pixels: 0.01 ha each)
    assert min(drawn.values()) >= 60 and sum(drawn.values()) == 300
    assert all(s["area_ha"] == pytest.approx(s["pixels"] * 0.01) for s in plan["strata"])
    rows, cols = pixels_of(got)
    names = {1: "crop", 2: "forest", 3: "water"}
    assert [names[data[r, c]] for r, c in zip(rows, cols, strict=True)] == list(got["map_class"])
    assert len(set(zip(rows, cols, strict=True))) == 300  # distinct pixels, none on nodata
    assert plan["seed"] == 5 and plan["allocation"]["method"] == "olofsson"
    assert "300 sample units in 3 strata" in proc.stdout

    # the same seed again: the same points; another seed: others
    again = tmp_path / "again.csv"
    design(map_path, again, n=300, minimum=60, seed=5)
    assert pd.read_csv(again).equals(pd.read_csv(out))
    other = design(map_path, tmp_path / "other.csv", n=300, minimum=60, seed=6)
    assert not pd.read_csv(other.output).equals(pd.read_csv(out))


def test_sizes_given_per_stratum(tmp_path: Path) -> None:
    map_path, _ = patchy_map(tmp_path)
    out = tmp_path / "given.csv"
    proc = run_main("design", map_path, "--allocation", "7,3,12", "-o", out, "--progress", "json")
    assert proc.returncode == 0, proc.stderr
    finished = json.loads(proc.stderr.strip().splitlines()[-1])  # for the QGIS provider
    assert finished == {
        "event": "finished",
        "outputs": {"points": str(out), "design": str(tmp_path / "given.design.json")},
    }
    counts = pd.read_csv(out)["stratum"].value_counts().to_dict()
    assert counts == {"crop": 7, "forest": 3, "water": 12}
    proc = run_main("design", map_path, "--allocation", "7,3", "-o", tmp_path / "x.csv")
    assert proc.returncode == 2 and "2 sizes for 3 strata (crop, forest, water" in proc.stderr
    proc = run_main(
        "design", map_path, "--n", "9", "--allocation", "7,3,1", "-o", tmp_path / "z.csv"
    )
    assert proc.returncode == 2 and "add up to 11" in proc.stderr
    proc = run_main("design", map_path, "-o", tmp_path / "y.csv")
    assert proc.returncode == 2 and "--n N" in proc.stderr and "--target-se" in proc.stderr


@pytest.mark.parametrize("layout", [("tiled", 64), ("striped", 7)])
def test_the_sample_is_uniform_within_strata(tmp_path: Path, layout: tuple[str, int]) -> None:
    """Each stratum's pixels in row-major order cut into 25 equal runs: a uniform draw puts
    as many units in each (chi-square); so do 36 squares of the map, by their pixels."""
    map_path, data = patchy_map(tmp_path, layout=layout)
    drawn = design(map_path, tmp_path / "s.csv", n=6000, allocation="equal", seed=12345)
    got = pd.read_csv(drawn.output)
    rows, cols = pixels_of(got)
    for code, name in ((1, "crop"), (2, "forest"), (3, "water")):
        mine = got["stratum"].to_numpy() == name
        flat = np.flatnonzero((data == code).ravel())  # the stratum's pixels, row-major
        ranks = np.searchsorted(flat, rows[mine] * data.shape[1] + cols[mine])
        assert np.array_equal(flat[ranks], rows[mine] * data.shape[1] + cols[mine])
        observed = np.bincount(ranks * 25 // len(flat), minlength=25)
        assert chisquare(observed).pvalue > 0.001, (name, observed)
        squares = (rows[mine] // 50) * 6 + cols[mine] // 50
        r_all, c_all = np.nonzero(data == code)
        expected = np.bincount((r_all // 50) * 6 + c_all // 50, minlength=36)
        observed = np.bincount(squares, minlength=36)
        expected = expected / expected.sum() * observed.sum()
        assert chisquare(observed[expected > 0], expected[expected > 0]).pvalue > 0.001, name


def test_target_se_and_strata_raster_then_assess(tmp_path: Path) -> None:
    """n from eq. 13; stratified by another raster; the labelled points assessed with the
    design's strata (read from the sidecar) by Stehman's estimators."""
    map_path, data = patchy_map(tmp_path)
    zones = np.where(np.arange(300)[:, None] < 150, 10, 20).repeat(300, axis=1).astype(np.uint8)
    zones_path = write_raster(tmp_path / "zones.tif", zones, transform=T)
    out = tmp_path / "plots.gpkg"
    pytest.importorskip("geopandas")
    proc = run_main(
        "design",
        map_path,
        "--target-se",
        "0.02",
        "--expected-ua",
        "0.9",
        "--strata",
        zones_path,
        "--seed",
        "3",
        "-o",
        out,
    )
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(out.with_name("plots.design.json").read_text())
    assert plan["n"] == 225  # 0.9 x 0.1 / 0.02^2, whatever the weights
    assert plan["strata_raster"] == str(zones_path.resolve())
    assert [s["name"] for s in plan["strata"]] == ["10", "20"]
    import geopandas

    points = geopandas.read_file(out, engine="pyogrio")
    assert len(points) == 225 and points.crs.to_epsg() == 32633
    assert set(points["stratum"]) == {"10", "20"}
    # a perfect interpreter: the reference is the map's class; then assess
    points["reference"] = points["map_class"]
    points.to_file(out, layer="points", engine="pyogrio")  # edited in place, as in QGIS
    result = assess(map_path, out, reference="reference")
    doc = result.document
    assert doc["estimator"] == "stehman2014" and doc["design"]["sidecar"].endswith(
        "plots.design.json"
    )
    assert doc["overall_accuracy"]["estimate"] == pytest.approx(1.0)
    for name in ("crop", "forest", "water"):
        a = doc["area"][name]
        assert a["estimate_ha"] == pytest.approx(a["mapped_ha"], rel=0.35)
        assert doc["users_accuracy"][name]["estimate"] == pytest.approx(1.0)


def test_the_worked_example_sample_size_and_allocation(tmp_path: Path) -> None:
    """Olofsson et al. (2014), sec. 5.1.1: a target SE of 0.01 for the overall accuracy with
    user's accuracies of 0.70, 0.60, 0.90 and 0.95 expected gives n = 641; at least 50 per
    stratum, the other 541 in proportion to area: 179 and 362."""
    map_path, data = olofsson_map(tmp_path)
    expected = "Deforestation=0.7,Forest gain=0.6,Stable forest=0.9,Stable non-forest=0.95"
    result = design(map_path, tmp_path / "s.csv", target_se=0.01, expected_ua=expected, seed=1)
    assert result.n == 641
    assert [s.units for s in result.strata] == [50, 50, 179, 362]
    assert [s.name for s in result.strata] == list(OLOFSSON_NAMES.values())
    got = pd.read_csv(result.output)
    assert got["stratum"].value_counts().to_dict() == {
        "Deforestation": 50,
        "Forest gain": 50,
        "Stable forest": 179,
        "Stable non-forest": 362,
    }
    cols = np.floor((got["x"].to_numpy() - 500_000.0) / 30).astype(int)
    rows = np.floor((6_000_000.0 - got["y"].to_numpy()) / 30).astype(int)
    names = [OLOFSSON_NAMES[int(v)] for v in data[rows, cols]]
    assert names == list(got["map_class"])
    plan = json.loads(result.sidecar.read_text())
    assert plan["allocation"]["expected_users_accuracy"]["Forest gain"] == 0.6
    assert plan["strata"][0]["pixels"] == 200_000


def test_design_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    map_path, _ = patchy_map(tmp_path)
    proc = run_main("design", map_path, "--n", "100", "-o", tmp_path / "s.csv")
    assert (
        proc.returncode == 2 and "at least 50 units" in proc.stderr and "--minimum" in proc.stderr
    )
    proc = run_main("design", map_path, "--n", "10", "-o", tmp_path / "s.txt")
    assert proc.returncode == 2 and ".gpkg or .csv" in proc.stderr
    other = write_raster(tmp_path / "off.tif", np.ones((5, 5), np.uint8), transform=T)
    proc = run_main("design", map_path, "--n", "10", "--strata", other, "-o", tmp_path / "s.csv")
    assert proc.returncode == 2 and "not on the grid of the map" in proc.stderr
    assert not (tmp_path / "s.csv").exists() and not (tmp_path / "s.design.json").exists()
