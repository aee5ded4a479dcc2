"""Lower bounds for the tool's wall time, each run as its own process by run_benchmarks.py.

  python benchmarks/floors.py read CONFIG.yaml --result R.json
      Open every layer and read every block of it once (windowed reads over the file's
      own block grid: 256 x 256 tiles, or strips), nothing else. The timed section is the
      read loop. The tool reads the stack twice (statistics, then prediction).

  python benchmarks/floors.py predict CONFIG.yaml --result R.json
      Load the valid (unmasked, median-filled) rows into memory first, exactly as the
      notebook does, then time only ``model.predict`` over them in chunks of --chunk-rows.

Both take the tool's YAML config and record the timed seconds in the result JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import rasterio
from notebook_baseline import (
    discover,
    load_config,
    load_frame,
    load_model,
    mask_and_fill,
    model_features,
)


def floor_read(config: Path) -> dict:
    cfg = load_config(config)
    features = model_features(load_model(cfg), cfg)
    layers = discover(cfg)
    blocks = 0
    t0 = time.perf_counter()
    # Each block is read once, so GDAL's block cache only adds memory: keep it small.
    with rasterio.Env(GDAL_CACHEMAX=64):
        for name in features:
            blocks += _read_blocks(layers[name])
    elapsed = time.perf_counter() - t0
    return {"timed_seconds": round(elapsed, 3), "blocks": blocks, "layers": len(features)}


def _read_blocks(path: Path) -> int:
    blocks = 0
    with rasterio.open(path) as src:
        for _, window in src.block_windows(1):
            src.read(1, window=window)
            blocks += 1
    return blocks


def floor_predict(config: Path, chunk_rows: int) -> dict:
    t_load = time.perf_counter()
    cfg = load_config(config)
    model = load_model(cfg)
    features = model_features(model, cfg)
    df, _grid = load_frame(cfg, features)
    threshold = int((cfg.get("nodata") or {}).get("threshold", 0))
    _masked, rows, _medians = mask_and_fill(df, threshold)
    del df
    load_seconds = time.perf_counter() - t_load
    t0 = time.perf_counter()
    n = 0
    for i in range(0, len(rows), chunk_rows):
        n += len(model.predict(rows.iloc[i : i + chunk_rows]))
    elapsed = time.perf_counter() - t0
    return {
        "timed_seconds": round(elapsed, 3),
        "predicted_rows": n,
        "load_seconds": round(load_seconds, 3),
        "rows_per_second": round(n / elapsed) if elapsed > 0 else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("which", choices=["read", "predict"])
    ap.add_argument("config", type=Path)
    ap.add_argument("--chunk-rows", type=int, default=1_000_000)
    ap.add_argument("--result", type=Path)
    args = ap.parse_args(argv)
    if args.which == "read":
        result = floor_read(args.config)
    else:
        result = floor_predict(args.config, args.chunk_rows)
    text = json.dumps(result, indent=1)
    if args.result:
        args.result.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
