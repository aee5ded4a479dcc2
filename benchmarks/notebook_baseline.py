"""The in-memory notebook that windowed_classify replaces, kept faithful for benchmarking.

Usage: python benchmarks/notebook_baseline.py CONFIG.yaml [--chunk-rows N] [--result R.json]

It takes the same YAML config as the tool and does what the original notebook does:
read every layer whole into one pandas DataFrame (pixels x layers), count nodata per
pixel, mask pixels with more than ``nodata.threshold`` nodata layers, fill the remaining
nodata with each layer's global median (``DataFrame.median()``), predict the unmasked rows
in chunks, map labels to integer codes and write a uint8 GeoTIFF. Memory grows with the
raster: that is the point of the comparison.

Only what the benchmark stacks need is supported: features come from the model's
``feature_names_in_`` or ``model.features`` (no Azure scoring file parsing).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
import yaml

DEFAULT_EXTENSIONS = (".tif", ".tiff")


def load_config(path: Path) -> dict[str, Any]:
    """Read the tool's YAML config; resolve relative paths against its folder."""
    with open(path) as fh:
        cfg = yaml.safe_load(fh) or {}
    base = path.resolve().parent
    for section, key in (("rasters", "folder"), ("model", "path"), ("output", "path")):
        value = cfg.get(section, {}).get(key)
        if value is not None:
            cfg[section][key] = str((base / value).resolve())
    return cfg


def discover(cfg: dict[str, Any]) -> dict[str, Path]:
    """Feature name -> raster path, sorted by relative path (as the tool does)."""
    folder = Path(cfg["rasters"]["folder"])
    exts = tuple(e.lower() for e in cfg["rasters"].get("extensions") or DEFAULT_EXTENSIONS)
    files = sorted(
        (p for p in folder.rglob("*") if p.is_file() and p.name.lower().endswith(exts)),
        key=lambda p: p.relative_to(folder).as_posix(),
    )
    layers: dict[str, Path] = {}
    for p in files:
        name = next(p.name[: -len(e)] for e in exts if p.name.lower().endswith(e))
        if name in layers:
            raise SystemExit(f"error: duplicate feature {name}: {layers[name]} and {p}")
        layers[name] = p
    return layers


def load_model(cfg: dict[str, Any]) -> Any:
    import joblib

    return joblib.load(cfg["model"]["path"])


def model_features(model: Any, cfg: dict[str, Any]) -> list[str]:
    if hasattr(model, "feature_names_in_"):
        return [str(f) for f in model.feature_names_in_]
    features = cfg.get("model", {}).get("features")
    if features:
        return list(features)
    raise SystemExit("error: the baseline needs feature_names_in_ or model.features")


def nodata_values(cfg: dict[str, Any]) -> list[float]:
    values = (cfg.get("nodata") or {}).get("values")
    return [float(v) for v in (values if values is not None else [-3.3999999521443642e38])]


def read_layer(path: Path, cfg: dict[str, Any]) -> np.ndarray:
    """Band 1 as float32, with every nodata value turned into NaN (as the notebook does)."""
    nod = cfg.get("nodata") or {}
    with rasterio.open(path) as src:
        arr = src.read(1).astype(np.float32, copy=False)
        file_nodata = src.nodata
    bad = ~np.isfinite(arr)
    values = nodata_values(cfg)
    if nod.get("use_file_nodata", True) and file_nodata is not None:
        values.append(float(file_nodata))
    for v in values:
        if not math.isnan(v):
            bad |= arr == np.float32(v)
    arr[bad] = np.nan
    return arr.ravel()


def load_frame(cfg: dict[str, Any], features: list[str]) -> tuple[pd.DataFrame, dict]:
    """Every model layer, whole, as one DataFrame column (the notebook's memory hog)."""
    layers = discover(cfg)
    missing = [f for f in features if f not in layers]
    if missing:
        raise SystemExit(f"error: missing features: {', '.join(missing)}")
    with rasterio.open(layers[features[0]]) as src:
        profile = {
            "crs": src.crs,
            "transform": src.transform,
            "width": src.width,
            "height": src.height,
        }
    df = pd.DataFrame({name: read_layer(layers[name], cfg) for name in features})
    return df, profile


def mask_and_fill(df: pd.DataFrame, threshold: int) -> tuple[np.ndarray, pd.DataFrame, pd.Series]:
    """Masked pixels (nodata count > threshold); valid rows with nodata filled by medians."""
    nodata_count = df.isna().sum(axis=1)
    masked = (nodata_count > threshold).to_numpy()
    medians = df.median()
    rows = df.loc[~masked].fillna(medians)
    return masked, rows, medians


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config", type=Path)
    ap.add_argument(
        "--chunk-rows",
        type=int,
        default=1_000_000,
        help="rows per model.predict call (default 1,000,000)",
    )
    ap.add_argument("--result", type=Path, help="write phase timings here (JSON)")
    args = ap.parse_args(argv)

    timing: dict[str, float] = {}
    t = t0 = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        timing[name] = round(now - t, 3)
        t = now

    cfg = load_config(args.config)
    out_cfg = cfg["output"]
    out_path = Path(out_cfg["path"])
    if out_path.exists() and not out_cfg.get("overwrite", False):
        raise SystemExit(f"error: output exists: {out_path}")
    model = load_model(cfg)
    features = model_features(model, cfg)
    classes = list((cfg.get("model") or {}).get("classes") or model.classes_)
    lap("load_model")

    df, grid = load_frame(cfg, features)
    lap("read")

    threshold = int((cfg.get("nodata") or {}).get("threshold", 0))
    masked, rows, _medians = mask_and_fill(df, threshold)
    lap("mask_fill")

    preds = [
        model.predict(rows.iloc[i : i + args.chunk_rows])
        for i in range(0, len(rows), args.chunk_rows)
    ]
    labels = np.concatenate(preds) if preds else np.empty(0, dtype=object)
    lap("predict")

    lookup = {label: code for code, label in enumerate(classes)}
    codes = pd.Series(labels).map(lookup)
    if codes.isna().any():
        unknown = sorted({str(x) for x in pd.Series(labels)[codes.isna()].unique()})
        raise SystemExit(f"error: labels {unknown} not in {classes}")
    dtype = out_cfg.get("dtype", "uint8")
    nodata = out_cfg.get("nodata", 255)
    out = np.full(len(df), nodata, dtype=dtype)
    out[~masked] = codes.to_numpy().astype(dtype)
    out = out.reshape(grid["height"], grid["width"])
    lap("map_codes")

    profile = {
        "driver": "GTiff",
        "count": 1,
        "dtype": dtype,
        "nodata": nodata,
        "compress": out_cfg.get("compress", "lzw"),
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        **grid,
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(out_path, "w", **profile) as dst:
        dst.write(out, 1)
    lap("write")
    timing["total"] = round(time.perf_counter() - t0, 3)

    if args.result:
        args.result.write_text(
            json.dumps(
                {
                    "timing": timing,
                    "pixels": len(df),
                    "layers": len(features),
                    "masked_pixels": int(masked.sum()),
                    "predicted_rows": len(rows),
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
