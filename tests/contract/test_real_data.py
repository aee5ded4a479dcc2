"""The input rules on real public data nobody on this team made (tests/realdata.py): Landsat
bands as single- and multi-band files with labelled points in another CRS, and the Meuse soil
survey's CRS-less rasters with points whose attributes are named like layers.

From the points to the map, as a user goes: ``sample`` (no model yet), train on the table,
run, and compare with the in-memory notebook on the same bands split into single files.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import rasterio
from checks import assert_codes_equal
from helpers import read_output, run_main, save_model, write_raster, write_yaml
from realdata import LANDSAT, MEUSE, sample_table
from reference import reference_run
from sklearn.ensemble import RandomForestClassifier

import windowed_classify

gpd = pytest.importorskip("geopandas")


def split_folder(folder: Path, target: Path, names: list[str]) -> Path:
    """Every band named in ``names`` as its own single-band file (with its nodata tag)."""
    from windowed_classify.inputs.discover import discover
    from windowed_classify.inputs.layers import list_bands

    from_config = windowed_classify.load_config(
        {"rasters": {"folder": str(folder)}}, base_dir=folder
    )
    bands = list_bands(discover(from_config.rasters)).bands
    for band in bands:
        if band.name in names:
            with rasterio.open(band.path) as ds:
                data = ds.read(band.index)
                write_raster(
                    target / f"{band.name}.tif",
                    data,
                    nodata=band.file_nodata,
                    crs=ds.crs,
                    transform=ds.transform,
                )
    return target


def train(table: pd.DataFrame, features: list[str], target: str, columns: list[str]) -> Any:
    rows = table[(table[columns] != "").all(axis=1)]
    x = rows[columns].astype(np.float64).to_numpy()
    model = RandomForestClassifier(n_estimators=15, max_depth=8, random_state=0)
    model.fit(pd.DataFrame(x, columns=features), rows[target].astype(int).to_numpy())
    return model


def test_landsat_from_points_in_another_crs_to_a_map_with_numeric_classes(
    real_data: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = write_yaml(
        tmp_path / "sample.yaml", {"rasters": {"folder": str(real_data["landsat"])}}
    )
    table = sample_table(config, real_data["src"] / "landsat96_points.shp", tmp_path / "train.csv")
    assert len(table) == 1000  # points in EPSG:3358, reprojected onto the EPSG:32119 grid
    assert {f"landsat_multiband_{i}" for i in range(1, 6)} <= set(table.columns)
    # each value is the raster's own float32 at the point's pixel
    with rasterio.open(real_data["landsat"] / "landsat_multiband.tif") as ds:
        band3, nodata = ds.read(3), ds.nodatavals[2]
        checked = 0
        for _, row in table.iterrows():
            r, c = ds.index(float(row["x"]), float(row["y"]))
            if not (0 <= r < ds.height and 0 <= c < ds.width):
                assert row["landsat_multiband_3"] == ""  # outside the scene: kept, empty
                continue
            value = band3[r, c]
            assert row["landsat_multiband_3"] == ("" if value == nodata else repr(float(value)))
            checked += 1
        assert checked > 800

    model = train(table, LANDSAT, "id", LANDSAT)  # class ids 1..7 (id <-> label: the legend)
    # the trial: an unrelated DEM without a CRS, on another grid, sorted first
    folder = shutil.copytree(real_data["landsat"], tmp_path / "landsat")
    shutil.copy(real_data["src"] / "dem.tif", folder / "aaa_dem.tif")
    out = tmp_path / "map" / "classes.tif"
    cfg = {
        "rasters": {"folder": str(folder)},
        "model": {"path": str(save_model(model, tmp_path / "m.pkl"))},
        "output": {"path": str(out), "codes": "label"},
    }
    report = windowed_classify.run(cfg)
    assert "aaa_dem" in report["ignored_layers"]
    assert "aaa_dem (not on the model's grid)" in caplog.text
    split = split_folder(real_data["landsat"], tmp_path / "split", LANDSAT)
    ref = reference_run(split, model, nodata_values=[-3.3999999521443642e38])
    labels = np.asarray(ref.classes)
    expected = np.where(ref.masked, 255, labels[np.minimum(ref.codes, len(labels) - 1)])
    assert_codes_equal(read_output(out)[0], expected.astype(np.uint8))
    assert report["legend"] == {str(v): str(v) for v in model.classes_}


def test_landsat_points_as_lon_lat_csv_need_their_crs(
    real_data: dict[str, Path], tmp_path: Path
) -> None:
    config = write_yaml(
        tmp_path / "sample.yaml", {"rasters": {"folder": str(real_data["landsat"])}}
    )
    points = gpd.read_file(real_data["src"] / "landsat96_points.shp").to_crs("EPSG:4326")
    csv = tmp_path / "lonlat.csv"
    pd.DataFrame({"id": points["id"], "x": points.geometry.x, "y": points.geometry.y}).to_csv(
        csv, index=False
    )
    proc = run_main("sample", config, csv, "-o", tmp_path / "bad.csv", "--quiet")
    assert proc.returncode == 0
    assert "1000 of 1000 point(s)" in proc.stderr
    assert "--points-crs" in proc.stderr and "EPSG:32119" in proc.stderr
    lonlat = sample_table(config, csv, tmp_path / "ok.csv", "--points-crs", "EPSG:4326")
    direct = sample_table(config, real_data["src"] / "landsat96_points.shp", tmp_path / "d.csv")
    same = (lonlat["landsat_multiband_1"] == direct["landsat_multiband_1"]).mean()
    assert same > 0.995  # a point on a pixel edge may fall either side after two reprojections


def test_meuse_without_crs_from_survey_points_to_a_soil_map(
    real_data: dict[str, Path], tmp_path: Path
) -> None:
    config = write_yaml(tmp_path / "sample.yaml", {"rasters": {"folder": str(real_data["meuse"])}})
    points = real_data["src"] / "meuse.shp"
    proc = run_main("sample", config, points, "-o", tmp_path / "clash.csv")
    assert proc.returncode == 2 and "--prefix" in proc.stderr
    assert "'dist'" in proc.stderr and "'soil'" in proc.stderr
    # meuse.shp has a CRS (its .prj: the Dutch RD New), the rasters none: said, even quietly
    proc = run_main(
        "sample", config, points, "-o", tmp_path / "train.csv", "--prefix", "cov_", "--quiet"
    )
    assert proc.returncode == 0
    assert "has a CRS" in proc.stderr and "but the rasters have none" in proc.stderr
    table = pd.read_csv(tmp_path / "train.csv", keep_default_na=False, dtype=str)
    assert len(table) == 155 and "cov_dem" in table.columns and "dist" in table.columns
    # the same coordinates as a CSV (no CRS to speak of): the same values, nothing said
    csv = tmp_path / "meuse.csv"
    table[["x", "y"]].to_csv(csv, index=False)
    proc = run_main("sample", config, csv, "-o", tmp_path / "xy.csv", "--prefix", "cov_")
    assert proc.returncode == 0 and "WARNING" not in proc.stderr
    xy = pd.read_csv(tmp_path / "xy.csv", keep_default_na=False, dtype=str)
    assert (xy["cov_dem"] == table["cov_dem"]).all()

    model = train(table, MEUSE, "soil", [f"cov_{n}" for n in MEUSE])
    out = tmp_path / "soil.tif"
    cfg = {
        "rasters": {"folder": str(real_data["meuse"])},
        "model": {"path": str(save_model(model, tmp_path / "m.pkl"))},
        "output": {"path": str(out), "codes": "label"},
    }
    windowed_classify.run(cfg)
    ref = reference_run(real_data["meuse"], model, nodata_values=[-3.3999999521443642e38])
    labels = np.asarray(ref.classes)
    expected = np.where(ref.masked, 255, labels[np.minimum(ref.codes, len(labels) - 1)])
    codes, info = read_output(out)
    assert_codes_equal(codes, expected.astype(np.uint8))
    assert info["crs"] is None and set(np.unique(codes)) <= {1, 2, 3, 255}
