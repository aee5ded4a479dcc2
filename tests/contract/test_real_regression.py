"""Regression and the area of applicability on real data (#14): the Meuse survey's zinc, as a
soil mapper would map it. ``sample`` makes the training table from the 155 survey points, a
forest learns log(zinc), the run writes the map, its spread and the DI/AOA; each equals the
in-memory computation over the whole (CRS-less) stack."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from helpers import save_model, write_yaml
from realdata import MEUSE, sample_table
from reference import notebook
from reference_outputs import applicability, assert_statistics, regression, spread
from sklearn.ensemble import RandomForestRegressor

import windowed_classify

NODATA = [-3.3999999521443642e38]
gpd = pytest.importorskip("geopandas")


def test_meuse_zinc_map_spread_and_aoa(real_data: dict[str, Path], tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "sample.yaml", {"rasters": {"folder": str(real_data["meuse"])}})
    table = sample_table(
        config, real_data["src"] / "meuse.shp", tmp_path / "points.csv", "--prefix", "cov_"
    )
    assert len(table) == 155
    # the AOA reads the model's features by name: the layer columns without the prefix (the
    # points' own dist and ffreq attributes make way); folds: the flood frequency class
    fold = table["ffreq"]
    training = table.drop(columns=[c for c in MEUSE if c in table.columns])
    training = training.rename(columns={f"cov_{n}": n for n in MEUSE}).assign(fold=fold)
    training.to_csv(tmp_path / "training.csv", index=False)
    usable = training[(training[MEUSE] != "").all(axis=1)]
    x = usable[MEUSE].astype(np.float64)
    y = np.log(usable["zinc"].astype(float))
    model = RandomForestRegressor(n_estimators=25, max_depth=8, random_state=0).fit(x, y)

    out = tmp_path / "map"
    cfg = {
        "rasters": {"folder": str(real_data["meuse"])},
        "nodata": {"values": NODATA},
        "model": {"path": str(save_model(model, tmp_path / "zinc.pkl"))},
        "output": {
            "path": str(out / "log_zinc.tif"),
            "spread": str(out / "spread.tif"),
            "di": str(out / "di.tif"),
            "aoa": str(out / "aoa.tif"),
        },
        "aoa": {"training": str(tmp_path / "training.csv"), "folds": "fold"},
        "processing": {"workers": 2, "engine": "threads"},
    }
    report = windowed_classify.run(cfg)

    nb = notebook(real_data["meuse"], model, nodata_values=NODATA)
    with rasterio.open(out / "log_zinc.tif") as ds:
        got = ds.read(1)
        assert ds.crs is None and ds.dtypes[0] == "float32"
    np.testing.assert_array_equal(got, regression(nb, model))
    assert_statistics(report["statistics"]["prediction"], got)
    with rasterio.open(out / "spread.tif") as ds:
        np.testing.assert_array_equal(ds.read(1), spread(nb, model))

    train = usable[MEUSE].astype(np.float64).to_numpy()
    di, aoa, ref = applicability(nb, train, model.feature_importances_, usable["fold"].to_numpy())
    with rasterio.open(out / "di.tif") as ds:
        np.testing.assert_allclose(ds.read(1), di, rtol=2e-7, atol=0)
    with rasterio.open(out / "aoa.tif") as ds:
        np.testing.assert_array_equal(ds.read(1), aoa)
    assert np.isclose(report["aoa"]["threshold"], ref.threshold, rtol=1e-12)
    assert report["aoa"]["training_rows_used"] == len(usable)
    # a floodplain survey covers the floodplain: some of the map lies outside its AOA
    assert 0.5 < report["aoa"]["inside_share"] < 1.0
    expected = pd.Series(np.exp(got[got != -9999]))
    assert 50 < expected.median() < 2000  # mg/kg: zinc in the Meuse floodplain
