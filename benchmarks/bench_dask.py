"""The Dask engine's overhead against the local engine, side by side, on one stack.

Runs ``python -m windowed_classify`` as its own process for each case, alternating them so
that load on a shared machine falls on both alike:

- ``local``: the local engine (threads), ``--workers`` workers;
- ``dask``: ``processing.engine: dask`` with ``scheduler: local`` (the run starts and stops
  its own LocalCluster of ``--workers`` single-threaded processes: the cost a user sees);
- ``dask_existing``: the same engine on a LocalCluster this script started beforehand
  (``scheduler: tcp://...``): the steady-state cost, without the cluster's start-up.

Every output must equal the local engine's, pixel for pixel. Prints a table and writes
``benchmarks/results/dask/bench_dask.json``.

    python benchmarks/bench_dask.py                     # 4000^2 x 20, tiled, 2 workers
    python benchmarks/bench_dask.py --size 2000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import yaml
from datagen import Dataset, ensure_datasets

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CASES = ("local", "dask", "dask_existing")


def write_config(path: Path, ds: Dataset, output: Path, processing: dict[str, Any]) -> None:
    cfg = {
        "rasters": {"folder": str(ds.layer_dir), "extensions": [".tif"]},
        "nodata": {"values": [ds.manifest["nodata_value"]], "use_file_nodata": True},
        "model": {"path": str(ds.model_path)},
        "output": {"path": str(output), "overwrite": True},
        "processing": {"stats_cache": False, **processing},
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def run_case(config: Path) -> tuple[float, dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "windowed_classify", str(config), "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{config} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    output = Path(yaml.safe_load(config.read_text())["output"]["path"])
    report = json.loads(output.with_name(output.stem + ".report.json").read_text())
    return wall, report


def read_codes(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=4000)
    p.add_argument("--layers", type=int, default=20)
    p.add_argument("--layout", default="tiled", choices=("tiled", "striped"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeat", type=int, default=2, help="rounds of every case, alternated")
    p.add_argument("--data", type=Path, default=HERE / "data")
    p.add_argument("--out", type=Path, default=HERE / "results" / "dask")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ds = ensure_datasets(args.data, args.size, args.layers, [args.layout])[args.layout]
    work = args.data / "runs" / f"dask_{ds.key}"
    work.mkdir(parents=True, exist_ok=True)

    import distributed

    cluster = distributed.LocalCluster(
        n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
    )
    processing = {
        "local": {"engine": "local", "workers": args.workers},
        "dask": {"engine": "dask", "scheduler": "local", "workers": args.workers},
        "dask_existing": {"engine": "dask", "scheduler": cluster.scheduler_address},
    }
    runs: list[dict[str, Any]] = []
    try:
        for round_ in range(args.repeat):
            for case in CASES:
                output = work / case / "prediction.tif"
                output.parent.mkdir(exist_ok=True)
                config = work / case / "config.yaml"
                write_config(config, ds, output, processing[case])
                load = os.getloadavg()
                wall, report = run_case(config)
                runs.append(
                    {
                        "case": case,
                        "round": round_,
                        "wall_seconds": round(wall, 3),
                        "timing": report["timing"],
                        "peak_memory_mb": report["peak_memory_mb"],
                        "windows": report["windows"],
                        "workers": report["workers"],
                        "dask_workers": report.get("dask_workers"),
                        "load_before": [round(v, 2) for v in load],
                    }
                )
                print(f"round {round_} {case:14s} {wall:7.2f} s  (load {load[0]:.2f})")
    finally:
        cluster.close()

    reference = read_codes(work / "local" / "prediction.tif")
    identical = {
        case: bool(np.array_equal(read_codes(work / case / "prediction.tif"), reference))
        for case in CASES
    }
    summary = {}
    for case in CASES:
        mine = [r for r in runs if r["case"] == case]
        summary[case] = {
            "best_wall_seconds": min(r["wall_seconds"] for r in mine),
            "median_wall_seconds": float(np.median([r["wall_seconds"] for r in mine])),
            "best_pass1_seconds": min(r["timing"]["pass1_seconds"] for r in mine),
            "best_pass2_seconds": min(r["timing"]["pass2_seconds"] for r in mine),
            "best_prepare_seconds": min(r["timing"]["prepare_seconds"] for r in mine),
            "max_peak_memory_mb": max(r["peak_memory_mb"] or 0 for r in mine),
            "identical_to_local": identical[case],
        }
    base = summary["local"]["best_wall_seconds"]
    for case in CASES:
        summary[case]["ratio_to_local"] = round(summary[case]["best_wall_seconds"] / base, 3)

    print(f"\n{ds.key}, {args.workers} workers, best of {args.repeat} (wall time, seconds)")
    head = f"{'case':14s} {'wall':>7s} {'prepare':>8s} {'pass 1':>7s} {'pass 2':>7s}"
    print(head + f" {'ratio':>6s} {'peak MB':>8s} identical")
    for case in CASES:
        s = summary[case]
        print(
            f"{case:14s} {s['best_wall_seconds']:7.2f} {s['best_prepare_seconds']:8.2f} "
            f"{s['best_pass1_seconds']:7.2f} {s['best_pass2_seconds']:7.2f} "
            f"{s['ratio_to_local']:6.2f} {s['max_peak_memory_mb']:8.0f} {s['identical_to_local']}"
        )

    args.out.mkdir(parents=True, exist_ok=True)
    doc = {
        "dataset": ds.key,
        "workers": args.workers,
        "repeat": args.repeat,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "dask": distributed.__version__,
        },
        "summary": summary,
        "runs": runs,
    }
    target = args.out / "bench_dask.json"
    target.write_text(json.dumps(doc, indent=1))
    print(f"\nwrote {target}")
    return 0 if all(identical.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
