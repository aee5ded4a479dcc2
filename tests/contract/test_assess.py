"""`assess` end to end: the papers' worked examples rebuilt as rasters and points, the
report's files, and every refusal (one line, exit 2)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import OLOFSSON_COUNTS as OLOFSSON_COUNTS_T
from helpers import (
    OLOFSSON_NAMES,
    OLOFSSON_TRANSFORM,
    olofsson_map,
    pixel_centre,
    run_main,
    write_legend_csv,
    write_raster,
)
from rasterio.transform import Affine, from_origin

from windowed_classify.commands.assess import assess
from windowed_classify.errors import InputError

UTM = "EPSG:32633"
OLOFSSON_COUNTS = np.array(OLOFSSON_COUNTS_T)
WIDTH = 5000
T30 = OLOFSSON_TRANSFORM


def olofsson_points(data: np.ndarray, seed: int = 0) -> pd.DataFrame:
    """Table 8's 640 units at distinct random pixels of their map class, labelled."""
    rng = np.random.default_rng(seed)
    rows, cols, labels = [], [], []
    for i in range(4):
        where = np.flatnonzero(data[:, 0] == i + 1)
        n = int(OLOFSSON_COUNTS[i].sum())
        flat = rng.choice(len(where) * WIDTH, n, replace=False)
        rows += list(where[flat // WIDTH])
        cols += list(flat % WIDTH)
        labels += [OLOFSSON_NAMES[j + 1] for j in range(4) for _ in range(OLOFSSON_COUNTS[i, j])]
    x, y = pixel_centre(T30, np.array(rows), np.array(cols))
    return pd.DataFrame({"plot": range(1, 641), "x": x, "y": y, "reference": labels})


@pytest.fixture(scope="module")
def olofsson_case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    return olofsson_map(tmp_path_factory.mktemp("olofsson"))


def test_olofsson_2014_worked_example_from_a_map_and_points(
    olofsson_case: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    map_path, data = olofsson_case
    points = olofsson_points(data)
    # two more: off the map, and on its nodata rows: reported and excluded
    nodata_x, nodata_y = pixel_centre(T30, 2005, 17)
    extra = pd.DataFrame(
        {
            "plot": [641, 642],
            "x": [400_000.0, nodata_x],
            "y": [6_000_000.0, nodata_y],
            "reference": ["", "Forest gain"],
        }
    )
    csv = tmp_path / "labelled.csv"
    pd.concat([points, extra]).to_csv(csv, index=False)
    out = tmp_path / "acc.json"
    proc = run_main("assess", map_path, csv, "--reference", "reference", "-o", out)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["estimator"] == "olofsson2014" and doc["classes"] == list(OLOFSSON_NAMES.values())

    # the paper, sec. 5: user's, producer's and overall accuracy with their 95% intervals
    ua = {
        "Deforestation": (0.88, 0.07),
        "Forest gain": (0.73, 0.10),
        "Stable forest": (0.93, 0.04),
        "Stable non-forest": (0.96, 0.02),
    }
    for name, (value, half) in ua.items():
        e = doc["users_accuracy"][name]
        assert round(e["estimate"], 2) == value
        assert round(e["ci95"][1] - e["estimate"], 2) == half
        assert e["ci95"][1] - e["estimate"] == pytest.approx(1.96 * e["se"])
    pa = {
        "Deforestation": 0.75,
        "Forest gain": 0.85,
        "Stable forest": 0.93,
        "Stable non-forest": 0.96,
    }
    for name, value in pa.items():
        assert round(doc["producers_accuracy"][name]["estimate"], 2) == value
    defor = doc["producers_accuracy"]["Deforestation"]
    assert round(defor["ci95"][1] - defor["estimate"], 2) == 0.21
    oa = doc["overall_accuracy"]
    assert round(oa["estimate"], 2) == 0.95 and round(oa["ci95"][1] - oa["estimate"], 2) == 0.02
    # ... and the areas: 21,158 +- 6,158 ha, 11,686 +- 3,756, 285,770 +- 15,510, 581,386 +- 16,282
    areas = {
        "Deforestation": (21_158, 6_158),
        "Forest gain": (11_686, 3_756),
        "Stable forest": (285_770, 15_510),
        "Stable non-forest": (581_386, 16_282),
    }
    mapped = {
        "Deforestation": 200_000,
        "Forest gain": 150_000,
        "Stable forest": 3_200_000,
        "Stable non-forest": 6_450_000,
    }
    for name, (area, half) in areas.items():
        a = doc["area"][name]
        assert round(a["estimate_ha"]) == area
        assert round(a["ci95_ha"][1] - a["estimate_ha"]) == half
        assert a["mapped_pixels"] == mapped[name]
        assert a["mapped_ha"] == pytest.approx(mapped[name] * 0.09)
        assert a["estimate_ha"] == pytest.approx(a["proportion"] * 900_000)
    # Table 9: the error matrix in proportions of area
    props = doc["error_matrix"]["proportions"]
    assert round(props["Deforestation"]["Deforestation"], 4) == 0.0176
    assert round(props["Stable non-forest"]["Stable non-forest"], 4) == 0.6212
    counts = doc["error_matrix"]["counts"]
    assert [[counts[m][r] for r in OLOFSSON_NAMES.values()] for m in OLOFSSON_NAMES.values()] == (
        OLOFSSON_COUNTS.tolist()
    )
    assert doc["design"]["strata"]["Forest gain"] == {
        "pixels": 150_000,
        "area_ha": pytest.approx(13_500),
        "sample_size": 75,
    }
    assert doc["excluded"]["count"] == 2
    assert doc["excluded"]["rows"] == {"outside the map": [641], "on nodata in the map": [642]}
    assert "excluded: 2 point(s)" in proc.stdout and "outside the map" in proc.stderr
    # the tables for a paper, and the summary
    md = out.with_suffix(".md").read_text()
    assert "21,158" in md and "± 6,158" in md and "0.880 ± 0.074" in md
    table = pd.read_csv(out.with_suffix(".csv"))
    row = table[table["class"] == "Forest gain"].iloc[0]
    assert round(row["estimate_ha"]) == 11_686 and row["mapped_pixels"] == 150_000
    overall = table[table["class"] == "overall"].iloc[0]
    assert round(overall["overall_accuracy"], 2) == 0.95
    assert "overall 0.947 ± 0.018" in proc.stdout and "Deforestation" in proc.stdout


# Stehman (2014) Table 2: per unit its stratum, map class and reference class
STEHMAN_STRATA = "AAAAAAAAAABBBBBBBBBBCCCCCCCCCCDDDDDDDDDD"
STEHMAN_MAP = "AAAAAAABBBABBBBBBBBBBBCCCCCCBBDDDDDDDDDD"
STEHMAN_REF = "AAAAACBABCABBBBBAABBCCCCCDDBBADDDDDDDCCB"


def test_stehman_2014_worked_example_with_a_strata_raster(tmp_path: Path) -> None:
    """Strata of 40,000, 30,000, 20,000 and 10,000 pixels (rows of 250); the map agrees with
    the strata except at the sample's pixels, where it holds the table's map classes."""
    codes = {ch: k + 1 for k, ch in enumerate("ABCD")}
    strata = np.repeat(np.arange(1, 5), [160, 120, 80, 40])[:, None].repeat(250, axis=1)
    themap = strata.copy()
    rng = np.random.default_rng(4)
    rows, cols = [], []
    for k in range(4):
        picks = rng.choice(np.flatnonzero(strata[:, 0] == k + 1).size * 250, 10, replace=False)
        first = np.flatnonzero(strata[:, 0] == k + 1)[0]
        rows += list(first + picks // 250)
        cols += list(picks % 250)
    for r, c, ch in zip(rows, cols, STEHMAN_MAP, strict=True):
        themap[r, c] = codes[ch]
    t = from_origin(600_000.0, 5_000_000.0, 10.0, 10.0)
    strata_path = write_raster(tmp_path / "zones.tif", strata.astype(np.uint8), transform=t)
    map_path = write_raster(tmp_path / "map.tif", themap.astype(np.uint8), transform=t)
    write_legend_csv(map_path, {v: k for k, v in codes.items()})
    x, y = pixel_centre(t, np.array(rows), np.array(cols))
    points = tmp_path / "units.csv"
    pd.DataFrame({"x": x, "y": y, "ref": list(STEHMAN_REF)}).to_csv(points, index=False)
    result = assess(map_path, points, reference="ref", strata=strata_path)
    doc = result.document
    assert doc["estimator"] == "stehman2014"
    assert result.output == tmp_path / "units.accuracy.json" and result.output.exists()
    a, c = doc["area"]["A"], doc["area"]["C"]
    assert round(a["proportion"], 2) == 0.35 and round(c["proportion"], 2) == 0.20
    assert round(a["proportion_se"], 3) == 0.082 and round(c["proportion_se"], 3) == 0.064
    assert round(doc["overall_accuracy"]["estimate"], 2) == 0.63
    assert round(doc["overall_accuracy"]["se"], 3) == 0.085
    assert round(doc["users_accuracy"]["B"]["estimate"], 3) == 0.574
    assert round(doc["users_accuracy"]["B"]["se"], 3) == 0.125
    assert round(doc["producers_accuracy"]["B"]["estimate"], 3) == 0.794
    assert round(doc["producers_accuracy"]["B"]["se"], 3) == 0.117  # the paper's eq. 28
    assert round(doc["error_matrix"]["proportions"]["B"]["C"], 2) == 0.08
    assert doc["design"]["strata"]["1"] == {"pixels": 40_000, "area_ha": 400.0, "sample_size": 10}
    assert doc["design"]["finite_population_correction"] is True
    assert a["estimate_ha"] == pytest.approx(0.35 * 1000)  # 100,000 pixels of 0.01 ha


# --------------------------------------------------------------------------- names and areas


def small_map(
    folder: Path, crs: str | None = UTM, transform: Affine | None = None
) -> tuple[Path, np.ndarray]:
    """60 x 40 pixels: class 0 in the top half, 1 below, 7 in a corner; nodata 255."""
    data = np.zeros((60, 40), dtype=np.uint8)
    data[30:] = 1
    data[:10, :10] = 7
    data[-2:, -2:] = 255
    t = transform if transform is not None else from_origin(500_000.0, 6_000_000.0, 20.0, 20.0)
    return write_raster(folder / "small.tif", data, nodata=255, crs=crs, transform=t), data


def small_points(data: np.ndarray, transform: Affine, per_class: int = 6) -> pd.DataFrame:
    rows, cols = [], []
    for code in (0, 1, 7):
        r, c = np.nonzero(data == code)
        rows += list(r[: per_class * 7 : 7])
        cols += list(c[: per_class * 7 : 7])
    x, y = pixel_centre(transform, np.array(rows), np.array(cols))
    return pd.DataFrame(
        {"x": x, "y": y, "truth": [str(data[r, c]) for r, c in zip(rows, cols, strict=True)]}
    )


def test_class_names_from_gdal_category_names_or_codes(tmp_path: Path) -> None:
    map_path, data = small_map(tmp_path)
    t = from_origin(500_000.0, 6_000_000.0, 20.0, 20.0)
    points = tmp_path / "p.csv"
    small_points(data, t).to_csv(points, index=False)
    doc = assess(map_path, points, reference="truth").document  # no legend: codes as text
    assert doc["classes"] == ["0", "1", "7"] and doc["overall_accuracy"]["estimate"] == 1.0
    # GDAL's category names (as QGIS or gdal_edit write them) name the classes
    names = ["water", "forest", "", "", "", "", "", "urban"]
    Path(str(map_path) + ".aux.xml").write_text(
        '<PAMDataset><PAMRasterBand band="1"><CategoryNames>'
        + "".join(f"<Category>{n}</Category>" for n in names)
        + "</CategoryNames></PAMRasterBand></PAMDataset>"
    )
    frame = small_points(data, t)
    frame["truth"] = frame["truth"].map({"0": "water", "1": "forest", "7": "urban"})
    frame.to_csv(points, index=False)
    doc = assess(map_path, points, reference="truth", overwrite=True).document
    assert doc["classes"] == ["water", "forest", "urban"]
    assert doc["class_codes"] == {"water": 0, "forest": 1, "urban": 7}
    assert doc["area"]["urban"]["mapped_pixels"] == 100
    assert doc["area"]["forest"]["mapped_pixels"] == 30 * 40 - 4  # its nodata corner
    assert doc["area"]["forest"]["mapped_ha"] == pytest.approx((30 * 40 - 4) * 0.04)


def test_geographic_maps_have_ellipsoidal_pixel_areas(tmp_path: Path) -> None:
    pyproj = pytest.importorskip("pyproj")
    t = from_origin(10.0, 60.0, 0.01, 0.01)
    map_path, data = small_map(tmp_path, crs="EPSG:4326", transform=t)
    points = tmp_path / "p.csv"
    small_points(data, t).to_csv(points, index=False)
    doc = assess(map_path, points, reference="truth").document
    geod = pyproj.Geod(ellps="WGS84")
    want = 0.0
    for r, c in zip(*np.nonzero(data == 1), strict=True):
        lons = np.linspace(10 + c * 0.01, 10 + (c + 1) * 0.01, 50)
        north, south = 60 - r * 0.01, 60 - (r + 1) * 0.01
        area, _ = geod.polygon_area_perimeter(
            np.concatenate([lons, lons[::-1]]), [south] * 50 + [north] * 50
        )
        want += abs(area)
    assert doc["area"]["1"]["mapped_ha"] == pytest.approx(want / 1e4, rel=1e-7)
    assert "ellipsoid" in doc["design"]["pixel_area"]


def test_geographic_map_without_pyproj_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = from_origin(10.0, 60.0, 0.01, 0.01)
    map_path, data = small_map(tmp_path, crs="EPSG:4326", transform=t)
    points = tmp_path / "p.csv"
    small_points(data, t).to_csv(points, index=False)
    monkeypatch.setitem(sys.modules, "pyproj", None)
    with pytest.raises(InputError, match=r"EPSG:4326.*windowed_classify\[geodesic\]"):
        assess(map_path, points, reference="truth")


# --------------------------------------------------------------------------- refusals


@pytest.fixture
def small(tmp_path: Path) -> tuple[Path, Path, pd.DataFrame]:
    map_path, data = small_map(tmp_path)
    frame = small_points(data, from_origin(500_000.0, 6_000_000.0, 20.0, 20.0))
    return map_path, tmp_path / "p.csv", frame


def refused(map_path: Path, points: Path, *args: str) -> str:
    out = points.with_name("report.json")
    proc = run_main("assess", map_path, points, "--reference", "truth", "-o", out, *args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert not out.exists() and not out.with_suffix(".md").exists()
    return proc.stderr


def test_a_label_that_is_not_a_class_lists_the_classes(
    small: tuple[Path, Path, pd.DataFrame],
) -> None:
    map_path, points, frame = small
    frame.loc[3, "truth"] = "Water"
    frame.to_csv(points, index=False)
    message = refused(map_path, points)
    assert "'Water' is not a class" in message and "its classes: 0, 1, 7" in message


def test_a_stratum_with_one_unit_is_named(small: tuple[Path, Path, pd.DataFrame]) -> None:
    map_path, points, frame = small
    frame[frame["truth"] != "7"].iloc[:-1].pipe(
        lambda f: pd.concat([f, frame[frame["truth"] == "7"].iloc[:1]])
    ).to_csv(points, index=False)
    message = refused(map_path, points)
    assert "map class '7' has 1 sample unit(s)" in message and "at least 2" in message


def test_empty_reference_cells_are_counted_and_named(
    small: tuple[Path, Path, pd.DataFrame],
) -> None:
    map_path, points, frame = small
    frame.loc[[2, 9], "truth"] = ""
    frame.to_csv(points, index=False)
    message = refused(map_path, points)
    assert "2 row(s) have no reference label" in message and "rows 3, 10" in message


def test_degrees_on_a_projected_map_without_points_crs(
    small: tuple[Path, Path, pd.DataFrame],
) -> None:
    from rasterio.warp import transform as warp

    map_path, points, frame = small
    lon, lat = warp(UTM, "EPSG:4326", list(frame["x"]), list(frame["y"]))
    degrees = frame.assign(x=lon, y=lat)
    degrees.to_csv(points, index=False)
    message = refused(map_path, points)
    assert "look like longitudes and latitudes" in message and "--points-crs" in message
    out = points.with_name("ok.json")
    proc = run_main(
        "assess",
        *(map_path, points, "--reference", "truth", "-o", out),
        *("--points-crs", "EPSG:4326", "--progress", "json"),
    )
    assert proc.returncode == 0, proc.stderr
    finished = json.loads(proc.stderr.strip().splitlines()[-1])  # for the QGIS provider
    assert finished["outputs"] == {
        "report": str(out),
        "markdown": str(out.with_suffix(".md")),
        "table": str(out.with_suffix(".csv")),
    }
    assert json.loads(out.read_text())["overall_accuracy"]["estimate"] == 1.0


def test_points_with_a_crs_on_a_map_without_one(tmp_path: Path) -> None:
    gpd = pytest.importorskip("geopandas")
    map_path, data = small_map(tmp_path, crs=None)
    frame = small_points(data, from_origin(500_000.0, 6_000_000.0, 20.0, 20.0))
    points = tmp_path / "p.gpkg"
    gpd.GeoDataFrame(
        frame[["truth"]], geometry=gpd.points_from_xy(frame["x"], frame["y"]), crs=UTM
    ).to_file(points, engine="pyogrio")
    message = refused(map_path, points)
    assert "has a CRS" in message and "the rasters have none" in message
