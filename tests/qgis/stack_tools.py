"""Helpers of the QGIS test that need the tool's venv (numpy, rasterio, scikit-learn), which
QGIS's Python does not have: run as ``VENV_PYTHON stack_tools.py make DIR [--size N]``,
``... vrt STACK DIR LAYER`` and ``... compare A.tif B.tif``.

``make`` writes DIR/covariates/*.tif (float32, tiled, a few nodata pixels), DIR/model.pkl (a
small RandomForest with text labels and feature_names_in_), DIR/points.csv (x, y in the
rasters' CRS) and DIR/points.geojson (the same points in EPSG:4326, for QGIS). ``vrt``
copies STACK/covariates to DIR/covariates with LAYER as a VRT over STACK's GeoTIFF (outside
DIR), the only file of that feature.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import rasterio
import rasterio.shutil
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import transform as warp_transform
from sklearn.ensemble import RandomForestClassifier

LAYERS = ("elevation", "rain", "ndvi", "clay")
CLASSES = ("forest", "grassland", "wetland", "cropland")
CRS_UTM = CRS.from_epsg(32633)
ORIGIN = (500000.0, 6000000.0)
PIXEL = 80.0


def make(folder: Path, size: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    cov = folder / "covariates"
    cov.mkdir(parents=True, exist_ok=True)
    h, w = size, size + size // 4  # not square: catches a swapped axis
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    fields = {
        "elevation": 200 + 3 * xx / w * 100 + 40 * np.sin(yy / 37),
        "rain": 600 + 400 * yy / h + 30 * np.cos(xx / 23),
        "ndvi": 0.2 + 0.6 * np.sin((xx + yy) / 90) ** 2,
        "clay": 10 + 30 * (np.cos(xx / 61) * np.sin(yy / 47)) ** 2,
    }
    profile = {
        "driver": "GTiff",
        "dtype": "float32",
        "width": w,
        "height": h,
        "count": 1,
        "crs": CRS_UTM,
        "transform": from_origin(*ORIGIN, PIXEL, PIXEL),
        "nodata": -9999.0,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "lzw",
    }
    for name in LAYERS:
        data = (fields[name] + rng.normal(0, 0.02, (h, w))).astype(np.float32)
        holes = rng.random((h, w)) < 0.01
        data[holes] = -9999.0
        with rasterio.open(cov / f"{name}.tif", "w", **profile) as dst:
            dst.write(data, 1)
            dst.set_band_description(1, name)

    # a model trained on samples of the same fields: every class is predicted somewhere
    n = 4000
    rows = rng.integers(0, h, n)
    cols = rng.integers(0, w, n)
    frame = pd.DataFrame({name: fields[name][rows, cols] for name in LAYERS}).astype("float32")
    score = frame["elevation"] / 100 + frame["ndvi"] * 3 - frame["rain"] / 400
    labels = np.array(CLASSES)[np.digitize(score, np.quantile(score, [0.25, 0.5, 0.75]))]
    model = RandomForestClassifier(n_estimators=20, max_depth=8, random_state=0, n_jobs=1)
    model.fit(frame, labels)
    joblib.dump(model, folder / "model.pkl")

    # points: a few inside, one outside the grid; an attribute with a leading zero
    px = np.array([5.5, 40.25, 100.0, w - 1.5, w + 10.0])
    py = np.array([3.5, 60.75, 20.0, h - 2.5, 5.0])
    xs = ORIGIN[0] + px * PIXEL
    ys = ORIGIN[1] - py * PIXEL
    ids = [f"{i:03d}" for i in range(len(xs))]
    pd.DataFrame({"plot": ids, "x": xs, "y": ys}).to_csv(folder / "points.csv", index=False)
    lon, lat = warp_transform(CRS_UTM, CRS.from_epsg(4326), xs.tolist(), ys.tolist())
    features = [
        {
            "type": "Feature",
            "properties": {"plot": pid},
            "geometry": {"type": "Point", "coordinates": [x, y]},
        }
        for pid, x, y in zip(ids, lon, lat, strict=True)
    ]
    (folder / "points.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8"
    )
    print(f"stack {w} x {h} x {len(LAYERS)} in {cov}; model {folder / 'model.pkl'}")


def vrt(stack: Path, folder: Path, layer: str) -> None:
    cov = folder / "covariates"
    cov.mkdir(parents=True, exist_ok=True)
    for tif in sorted((stack / "covariates").glob("*.tif")):
        if tif.stem == layer:
            rasterio.shutil.copy(str(tif.absolute()), str(cov / f"{layer}.vrt"), driver="VRT")
        else:
            rasterio.shutil.copyfiles(str(tif), str(cov / tif.name))
    print(f"{cov}: " + ", ".join(sorted(p.name for p in cov.iterdir())))


def compare(a: Path, b: Path) -> int:
    """0 when both rasters have the same grid, dtype, nodata and pixels."""
    with rasterio.open(a) as ra, rasterio.open(b) as rb:
        same_meta = (
            ra.crs == rb.crs
            and ra.transform == rb.transform
            and ra.shape == rb.shape
            and ra.count == rb.count
            and ra.dtypes == rb.dtypes
            and ra.nodata == rb.nodata
        )
        if not same_meta:
            print(f"different grids or types: {ra.profile} != {rb.profile}")
            return 1
        da, db = ra.read(), rb.read()
    if not np.array_equal(da, db, equal_nan=np.issubdtype(da.dtype, np.floating)):
        print(f"{int((da != db).sum())} pixel(s) differ between {a} and {b}")
        return 1
    values, counts = np.unique(da, return_counts=True)
    print(
        f"identical: {da.shape}, codes {dict(zip(values.tolist(), counts.tolist(), strict=True))}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make")
    m.add_argument("folder", type=Path)
    m.add_argument("--size", type=int, default=400)
    v = sub.add_parser("vrt")
    v.add_argument("stack", type=Path)
    v.add_argument("folder", type=Path)
    v.add_argument("layer")
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = parser.parse_args(argv)
    if args.command == "make":
        make(args.folder, args.size)
        return 0
    if args.command == "vrt":
        vrt(args.stack, args.folder, args.layer)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    sys.exit(main())
