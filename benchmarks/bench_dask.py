"""The Dask engine's overhead against the local engine, side by side, on one stack.

Runs ``python -m windowed_classify`` as its own process for each case (measured by
harness.py: wall time, peak RSS of the process tree), alternating them so that load on a
shared machine falls on all alike:

- ``local``: the local engine (threads), ``--workers`` workers;
- ``dask``: ``processing.engine: dask`` with ``scheduler: local`` (the run starts and stops
  its own LocalCluster of ``--workers`` single-threaded processes, inside the timed run:
  the cost a user sees);
- ``dask_existing``: the same engine on a LocalCluster started beforehand, outside the
  timed run (dask_cluster.py, ``scheduler: tcp://...``): the steady-state cost. Its peak
  memory is given with and without the cluster's processes.

Pass 1, pass 2 and the whole run are reported separately (from the tool's report), each as a
ratio to the local engine's. Every output must equal the local engine's, pixel for pixel.
Statistics cache off in every case. Prints a table and writes ``<out>/<name>.json``,
``.md`` and ``_memory.png``.

    python benchmarks/bench_dask.py                     # 4000^2 x 20, tiled, threshold 0
    python benchmarks/bench_dask.py --preset outside    # 5000^2 x 16, threshold 1 (#13)
    python benchmarks/bench_dask.py --size 2000 --repeat 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import harness
import numpy as np
import yaml
from cases import ensure_stacks
from datagen import Dataset
from harness import Case, CaseResult, fmt, md_table, ratio

HERE = harness.HERE
CASES = ("local", "dask", "dask_existing")
# The measurement made outside the team (#13): scattered nodata and threshold 1 fill pixels.
PRESETS = {
    "readme": {"size": 4000, "layers": 20, "threshold": 0, "name": "bench_dask"},
    "outside": {"size": 5000, "layers": 16, "threshold": 1, "name": "bench_dask_outside"},
}
# #13's targets for the Dask engine against the local one (same worker count, cache off).
TARGETS = (("pass1", 1.15), ("pass2", 1.15), ("wall", 1.3))


def write_config(
    path: Path, ds: Dataset, output: Path, threshold: int, processing: dict[str, Any]
) -> None:
    cfg = {
        "rasters": {"folder": str(ds.layer_dir), "extensions": [".tif"]},
        "nodata": {
            "values": [ds.manifest["nodata_value"]],
            "use_file_nodata": True,
            "threshold": threshold,
        },
        "model": {"path": str(ds.model_path)},
        "output": {"path": str(output), "overwrite": True},
        "processing": {"stats_cache": False, **processing},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def start_cluster(python: str, workers: int, env: dict[str, str]) -> tuple[Any, str]:
    """A LocalCluster in its own process (dask_cluster.py); returns it and its address."""
    proc = subprocess.Popen(
        [python, str(HERE / "dask_cluster.py"), "--workers", str(workers)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if not line:
        proc.wait()
        raise SystemExit(f"the LocalCluster did not start (exit {proc.returncode})")
    return proc, json.loads(line)["address"]


def stop_cluster(proc: Any) -> None:
    with contextlib.suppress(OSError):
        proc.stdin.close()  # dask_cluster.py closes the cluster and exits
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run_record(res: CaseResult, round_: int) -> dict[str, Any]:
    """One run: the tool's report timings and the harness's measurements."""
    d = res.detail
    return {
        "case": res.case,
        "round": round_,
        "status": res.status,
        "wall_seconds": res.wall_s,
        "timing": d.get("timing"),
        "peak_memory_mb": d.get("peak_memory_mb"),  # the tool's own figure
        "tree_peak_rss_mb": res.peak_rss_mb,  # the harness's: the whole process tree
        "peak_with_cluster_mb": res.watched_peak_rss_mb,  # dask_existing: + the cluster
        "cpu_seconds": res.cpu_s,
        "other_cpu_seconds": res.other_cpu_s,
        "windows": d.get("windows"),
        "workers": d.get("workers"),
        "engine": d.get("engine"),
        "stats_cache": d.get("stats_cache"),
        "dask_workers": d.get("dask_workers"),
        "load_before": res.load_avg,
        "error": res.error,
    }


def _timing(run: dict[str, Any], key: str) -> float | None:
    t = run.get("timing") or {}
    return t.get(key) if isinstance(t, dict) else None


def _best(values: list[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return min(got) if got else None


def summarize(runs: list[dict[str, Any]], identical: dict[str, bool]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for case in CASES:
        mine = [r for r in runs if r["case"] == case and r["status"] == "ok"]
        if not mine:
            summary[case] = {"status": "failed", "identical_to_local": identical.get(case)}
            continue
        walls = [r["wall_seconds"] for r in mine]
        summary[case] = {
            "best_wall_seconds": min(walls),
            "median_wall_seconds": float(np.median(walls)),
            "best_prepare_seconds": _best([_timing(r, "prepare_seconds") for r in mine]),
            "best_pass1_seconds": _best([_timing(r, "pass1_seconds") for r in mine]),
            "best_pass2_seconds": _best([_timing(r, "pass2_seconds") for r in mine]),
            "best_total_seconds": _best([_timing(r, "total_seconds") for r in mine]),
            "max_peak_memory_mb": max(r["peak_memory_mb"] or 0 for r in mine),
            "max_tree_peak_rss_mb": max(r["tree_peak_rss_mb"] or 0 for r in mine),
            "max_peak_with_cluster_mb": max(
                (r["peak_with_cluster_mb"] for r in mine if r["peak_with_cluster_mb"]),
                default=None,
            ),
            "identical_to_local": identical.get(case),
        }
    base = summary["local"]
    for case in CASES:
        s = summary[case]
        for key, field in (
            ("ratio_to_local", "best_wall_seconds"),
            ("pass1_ratio_to_local", "best_pass1_seconds"),
            ("pass2_ratio_to_local", "best_pass2_seconds"),
            ("total_ratio_to_local", "best_total_seconds"),
        ):
            s[key] = ratio(s.get(field), base.get(field))
    return summary


def table_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = ["case", "wall s", "prepare s", "pass 1 s", "pass 2 s", "total s", "wall ratio"]
    head += ["pass 1 ratio", "pass 2 ratio", "total ratio", "peak MB (tree)"]
    head += ["peak MB (+cluster)", "identical"]
    rows = []
    for case in CASES:
        s = summary[case]
        rows.append(
            [
                case,
                fmt(s.get("best_wall_seconds")),
                fmt(s.get("best_prepare_seconds")),
                fmt(s.get("best_pass1_seconds")),
                fmt(s.get("best_pass2_seconds")),
                fmt(s.get("best_total_seconds")),
                fmt(s.get("ratio_to_local")),
                fmt(s.get("pass1_ratio_to_local")),
                fmt(s.get("pass2_ratio_to_local")),
                fmt(s.get("total_ratio_to_local")),
                fmt(s.get("max_tree_peak_rss_mb"), 0),
                fmt(s.get("max_peak_with_cluster_mb"), 0),
                fmt(s.get("identical_to_local")),
            ]
        )
    return head, rows


def write_markdown(path: Path, doc: dict[str, Any]) -> None:
    m = doc["machine"]
    v = m.get("versions", {})
    parts = [
        f"# Dask engine against the local engine: {doc['dataset']}, threshold {doc['threshold']}",
        "",
        f"{m.get('cpu_count')} CPUs ({m.get('cpu_model', '?')}), {m.get('ram_gb')} GB RAM, "
        f"Python {m.get('python')}, dask {v.get('distributed')}, windowed_classify "
        f"{v.get('windowed_classify')}, commit {str(m.get('git_commit'))[:10]}. "
        f"{doc['workers']} workers, best of {doc['repeat']} alternating rounds; statistics "
        "cache off. Times: the tool's report (prepare, pass 1, pass 2, total) and the "
        "process's wall time; ratios to the local engine's. `dask` starts its LocalCluster "
        "inside the run; `dask_existing` uses one started before (its processes are in "
        "'peak MB (+cluster)').",
        "",
        md_table(*table_rows(doc["summary"])),
        "",
        "## Targets (#13)",
        "",
    ]
    head = ["case", "figure", "ratio to local", "bound", "met"]
    rows = []
    for case in ("dask", "dask_existing"):
        s = doc["summary"][case]
        for what, bound in TARGETS:
            key = "ratio_to_local" if what == "wall" else f"{what}_ratio_to_local"
            value = s.get(key)
            met = "-" if value is None else ("yes" if value <= bound else "**no**")
            rows.append([case, what, fmt(value, 3), fmt(bound), met])
    parts += [md_table(head, rows), ""]
    head = ["round", "case", "status", "wall s", "pass 1 s", "pass 2 s", "load before"]
    head += ["other CPU s"]
    rows = [
        [
            str(r["round"]),
            r["case"],
            r["status"],
            fmt(r["wall_seconds"]),
            fmt(_timing(r, "pass1_seconds")),
            fmt(_timing(r, "pass2_seconds")),
            " / ".join(f"{x:.2f}" for x in r.get("load_before") or []),
            fmt(r.get("other_cpu_seconds"), 1),
        ]
        for r in doc["runs"]
    ]
    parts += ["## Every run", "", md_table(head, rows), ""]
    path.write_text("\n".join(parts))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="readme",
        help="readme: 4000^2 x 20, threshold 0 (the README's figure); outside: 5000^2 x 16, "
        "threshold 1 (the measurement in #13); --size/--layers/--threshold override it",
    )
    p.add_argument("--size", type=int, default=None)
    p.add_argument("--layers", type=int, default=None)
    p.add_argument("--threshold", type=int, default=None, help="nodata.threshold")
    p.add_argument("--layout", default="tiled", choices=("tiled", "striped"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeat", type=int, default=2, help="rounds of every case, alternated")
    p.add_argument("--data", type=Path, default=HERE / "data")
    p.add_argument("--out", type=Path, default=HERE / "results" / "dask")
    p.add_argument("--name", default=None, help="file stem in --out (default: the preset's)")
    p.add_argument("--python", default=sys.executable, help="interpreter of the runs")
    p.add_argument(
        "--package-root",
        type=Path,
        default=harness.REPO,
        help="checkout whose windowed_classify is measured (first on PYTHONPATH)",
    )
    p.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    p.add_argument("--poll", type=float, default=0.05, help="RSS polling, seconds")
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS")
    args = p.parse_args(argv)
    for key, value in PRESETS[args.preset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.data = args.data.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    harness.exit_on_sigterm()
    env = harness.package_env(args.package_root.resolve())
    ds = ensure_stacks(args.python, args.data, args.size, args.layers, [args.layout])[args.layout]
    suffix = f"_t{args.threshold}" if args.threshold else ""
    work = args.data / "runs" / f"dask_{ds.key}{suffix}"
    harness.warm_cache(ds.layer_dir.iterdir())

    cluster, address = start_cluster(args.python, args.workers, env)
    processing = {
        "local": {"engine": "local", "workers": args.workers},
        "dask": {"engine": "dask", "scheduler": "local", "workers": args.workers},
        "dask_existing": {"engine": "dask", "scheduler": address},
    }
    runs: list[dict[str, Any]] = []
    try:
        for round_ in range(args.repeat):
            for case in CASES:
                output = work / case / "prediction.tif"
                config = work / case / "config.yaml"
                write_config(config, ds, output, args.threshold, processing[case])
                print(f"round {round_} {case:14s} ...", end=" ", flush=True)
                res = harness.run_case(
                    Case(
                        name=case,
                        command=[args.python, "-m", "windowed_classify", str(config), "--quiet"],
                        run_dir=work / case,
                        report=output.with_suffix(".report.json"),
                        env=env,
                        watch=[cluster.pid] if case == "dask_existing" else (),
                    ),
                    timeout=args.timeout,
                    poll=args.poll,
                    wait_idle_s=args.wait_idle,
                    repeat=round_,
                )
                harness.print_outcome(res)
                runs.append(run_record(res, round_))
    finally:
        stop_cluster(cluster)

    agreement = harness.compare_rasters({c: work / c / "prediction.tif" for c in CASES})
    identical = {"local": True} | {
        a["b"]: bool(a.get("identical")) for a in agreement if a["a"] == "local"
    }
    summary = summarize(runs, identical)
    print(f"\n{ds.key}, threshold {args.threshold}, {args.workers} workers, best of {args.repeat}")
    harness.print_table(*table_rows(summary))

    doc = {
        "dataset": ds.key,
        "threshold": args.threshold,
        "workers": args.workers,
        "repeat": args.repeat,
        "machine": harness.machine_info(args.python, env, ("distributed", "dask")),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "summary": summary,
        "agreement": agreement,
        "runs": runs,
    }
    stem = args.out / args.name
    harness.write_json(stem.with_suffix(".json"), doc)
    write_markdown(stem.with_suffix(".md"), doc)
    last_round = runs[-len(CASES) :]
    bars = [(r["case"], r["tree_peak_rss_mb"], r["status"]) for r in last_round]
    bars += [
        (f"{r['case']} + cluster", r["peak_with_cluster_mb"], r["status"])
        for r in last_round
        if r["peak_with_cluster_mb"]
    ]
    harness.plot_peaks(
        args.out / f"{args.name}_memory.png",
        bars,
        title=f"Peak memory, {ds.key}, threshold {args.threshold}, last round",
    )
    print(f"\nwrote {stem}.json, {stem.name}.md, {stem.name}_memory.png")
    ok = all(r["status"] == "ok" for r in runs)
    return 0 if ok and all(identical.get(c) for c in CASES) else 1


if __name__ == "__main__":
    raise SystemExit(main())
