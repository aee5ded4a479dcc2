"""Time and peak memory of ``design`` and ``assess`` on a class map of a given size.

A synthetic class map (uint8, 256 x 256 tiles, LZW, EPSG:32633, 30 m pixels, six classes in
patches with a nodata hole, and its legend) is written band by band by a child process, with
a strata raster on the same grid (four zones). Then, each as its own process measured by
harness.py (wall time, peak RSS of the whole process tree):

- ``design``: ``design MAP --n N`` (strata = the map's classes), then ``assess`` on the points
  labelled by a stand-in interpreter (the map's class, one in ten changed): Olofsson's path;
- ``design_strata`` / ``assess_strata``: the same with ``--strata`` (Stehman's path).

Flat memory means the peaks do not grow with ``--pixels``: the map is streamed in bands of
rows (see windowed_classify/commands/classmap.py). Writes ``<out>/bench_assess.json`` and
``.md``.

    python benchmarks/bench_assess.py --pixels 100e6      # the full size (a quiet machine)
    python benchmarks/bench_assess.py --pixels 4e6        # a quick check
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import harness
from harness import Case, fmt, md_table

HERE = harness.HERE
NAMES = ["water", "forest", "grass", "crop", "urban", "bare"]
CASES = ("design", "assess", "design_strata", "assess_strata")


# --------------------------------------------------------------------------- data (a child)


def make_map(args: argparse.Namespace) -> int:
    """In a child process: the class map and the strata raster, written band by band."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    side = int(math.isqrt(int(args.pixels)))
    folder = args.work
    folder.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff",
        "width": side,
        "height": side,
        "count": 1,
        "dtype": "uint8",
        "crs": "EPSG:32633",
        "transform": from_origin(500_000.0, 6_000_000.0, 30.0, 30.0),
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "lzw",
        "nodata": 255,
    }
    rng = np.random.default_rng(0)
    patches = rng.integers(0, len(NAMES), (side // 64 + 2, side // 64 + 2)).astype(np.uint8)
    band = 1024
    with (
        rasterio.open(folder / "map.tif", "w", **profile) as out,
        rasterio.open(folder / "zones.tif", "w", **{**profile, "nodata": None}) as zones,
    ):
        for r0 in range(0, side, band):
            h = min(band, side - r0)
            rows = (np.arange(r0, r0 + h) // 64)[:, None]
            cols = (np.arange(side) // 64)[None, :]
            data = patches[rows, cols].copy()
            speckle = rng.random((h, side)) < 0.05
            data[speckle] = rng.integers(0, len(NAMES), int(speckle.sum()))
            hole_rows = (np.arange(r0, r0 + h) >= side // 3) & (np.arange(r0, r0 + h) < side // 2)
            data[hole_rows, : side // 4] = 255
            window = rasterio.windows.Window(0, r0, side, h)
            out.write(data, 1, window=window)
            zone = 2 * (np.arange(r0, r0 + h) * 2 // side)[:, None] + cols * 64 * 2 // side
            zones.write(zone.astype(np.uint8), 1, window=window)
    with open(folder / "map.legend.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["code", "label", "colour", "pixel_count"])
        for code, name in enumerate(NAMES):
            writer.writerow([code, name, "#000000", 0])
    print(
        json.dumps(
            {"map": str(folder / "map.tif"), "zones": str(folder / "zones.tif"), "side": side}
        )
    )
    return 0


def label(points: Path, labelled: Path) -> None:
    """A stand-in interpreter: the map's class, one point in ten given the next class."""
    with open(points, newline="") as f:
        rows = list(csv.DictReader(f))
    for i, row in enumerate(rows):
        mapped = row["map_class"]
        row["reference"] = NAMES[(NAMES.index(mapped) + 1) % len(NAMES)] if i % 10 == 0 else mapped
    with open(labelled, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


# --------------------------------------------------------------------------- runs


def command(args: argparse.Namespace, case: str, made: dict, work: Path) -> list[str]:
    tool = [args.python, "-m", "windowed_classify"]
    strata = ["--strata", made["zones"]] if case.endswith("_strata") else []
    points = work / f"{case.replace('assess', 'design')}.csv"
    if case.startswith("design"):
        return [
            *tool,
            "design",
            made["map"],
            "--n",
            str(args.n),
            "--seed",
            "1",
            "-o",
            str(points),
            "--overwrite",
            "--quiet",
            *strata,
        ]
    labelled = points.with_name(points.stem + "_labelled.csv")
    label(points, labelled)
    return [
        *tool,
        "assess",
        made["map"],
        str(labelled),
        "--reference",
        "reference",
        "--design",
        str(points.with_name(points.stem + ".design.json")),
        "-o",
        str(work / f"{case}.json"),
        "--overwrite",
        "--quiet",
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pixels", type=float, default=100e6, help="map size (a square), pixels")
    p.add_argument("--n", type=int, default=1000, help="sample units")
    p.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    p.add_argument("--data", type=Path, default=HERE / "data")
    p.add_argument("--out", type=Path, default=HERE / "results" / "assess")
    p.add_argument("--python", default=sys.executable, help="interpreter of the runs")
    p.add_argument("--package-root", type=Path, default=harness.REPO)
    p.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    p.add_argument("--poll", type=float, default=0.05, help="RSS polling, seconds")
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS")
    p.add_argument("--make-map", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.make_map:
        return make_map(args)
    harness.exit_on_sigterm()
    env = harness.package_env(args.package_root.resolve())
    work = (args.data / f"assess_{int(args.pixels)}").resolve()
    made_file = work / "made.json"
    if not made_file.exists():
        print(f"writing a map of {int(args.pixels):,} pixels ...", flush=True)
        done = subprocess.run(
            [
                args.python,
                str(Path(__file__).resolve()),
                "--make-map",
                "--pixels",
                str(args.pixels),
                "--work",
                str(work),
            ],
            stdout=subprocess.PIPE,
            text=True,
            check=True,
            env=env,
        )
        made_file.write_text(done.stdout.strip().splitlines()[-1])
    made = json.loads(made_file.read_text())
    harness.warm_cache([Path(made["map"]), Path(made["zones"])])
    order = [c for c in CASES if c in args.cases]
    runs: list[dict[str, Any]] = []
    for case in order:
        print(f"{case:14s} ...", end=" ", flush=True)
        res = harness.run_case(
            Case(name=case, command=command(args, case, made, work), run_dir=work / case, env=env),
            timeout=args.timeout,
            poll=args.poll,
            wait_idle_s=args.wait_idle,
        )
        harness.print_outcome(res)
        runs.append(
            {
                "case": case,
                "status": res.status,
                "wall_seconds": res.wall_s,
                "tree_peak_rss_mb": res.peak_rss_mb,
                "cpu_seconds": res.cpu_s,
                "load_before": res.load_avg,
                "other_cpu_seconds": res.other_cpu_s,
                "command": res.command,
                "error": res.error,
            }
        )
    pixels = made["side"] ** 2
    head = ["case", "map pixels", "sample units", "wall s", "peak MB (tree)", "status"]
    rows = [
        [
            r["case"],
            f"{pixels:,}",
            str(args.n),
            fmt(r["wall_seconds"]),
            fmt(r["tree_peak_rss_mb"], 0),
            r["status"],
        ]
        for r in runs
    ]
    print()
    harness.print_table(head, rows)
    doc = {
        "pixels": pixels,
        "map_megabytes_uint8": round(pixels / 2**20, 1),
        "n": args.n,
        "machine": harness.machine_info(args.python, env),
        "runs": runs,
    }
    stem = args.out / "bench_assess"
    harness.write_json(stem.with_suffix(".json"), doc)
    stem.with_suffix(".md").write_text(
        f"# design and assess on a {pixels:,}-pixel map\n\n"
        f"uint8 map, 256 x 256 tiles, LZW; {args.n} sample units; peak = summed RSS of the "
        "process tree (harness.py).\n\n" + md_table(head, rows) + "\n"
    )
    print(f"\nwrote {stem}.json and {stem.name}.md")
    return 0 if all(r["status"] == "ok" for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
