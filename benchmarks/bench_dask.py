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
import statistics
import subprocess
from typing import Any

import harness
from harness import CLASS_OUTPUT, Case, CaseResult, fmt, md_table, ratio
from plots import plot_peaks

HERE = harness.HERE
CASES = ("local", "dask", "dask_existing")
# The measurement made outside the team (#13): scattered nodata and threshold 1 fill pixels.
PRESETS = {
    "readme": {"size": 4000, "layers": 20, "threshold": 0, "name": "bench_dask"},
    "outside": {"size": 5000, "layers": 16, "threshold": 1, "name": "bench_dask_outside"},
}
# #13's targets for the Dask engine against the local one (same worker count, cache off).
TARGETS = (("pass1", 1.15), ("pass2", 1.15), ("wall", 1.3))


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


def summarize(runs: list[CaseResult], identical: dict[str, bool]) -> dict[str, Any]:
    """Per case: the best of its rounds (each figure on its own) and its highest peaks,
    every figure also as a ratio to the local engine's, and whether its output equals the
    local engine's (``identical``: known once every round has run)."""
    summary: dict[str, Any] = {}
    for case in CASES:
        mine = [r for r in runs if r.case == case and r.status == "ok"]
        if not mine:
            summary[case] = {"status": "failed", "identical_to_local": identical.get(case)}
            continue
        walls = [r.wall_s for r in mine if r.wall_s is not None]
        summary[case] = {
            "best_wall_seconds": min(walls),
            "median_wall_seconds": statistics.median(walls),
            **{
                f"best_{key}": harness.lowest(harness.timing(r, key) for r in mine)
                for key in ("prepare_seconds", "pass1_seconds", "pass2_seconds", "total_seconds")
            },
            "max_peak_memory_mb": max(r.detail.get("peak_memory_mb") or 0 for r in mine),
            "max_tree_peak_rss_mb": max(r.peak_rss_mb or 0 for r in mine),
            "max_peak_with_cluster_mb": max(
                (r.watched_peak_rss_mb for r in mine if r.watched_peak_rss_mb), default=None
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


def render(doc: dict[str, Any]) -> str:
    """<name>.md."""
    parts = [
        f"# Dask engine against the local engine: {doc['dataset']}, threshold {doc['threshold']}",
        "",
        f"{harness.machine_line(doc['machine'], 'distributed')} {doc['args']['workers']} "
        f"workers, best of {doc['args']['repeat']} alternating rounds; statistics cache off. "
        "Times: the tool's report (prepare, pass 1, pass 2, total) and the process's wall "
        "time; ratios to the local engine's. `dask` starts its LocalCluster inside the run; "
        "`dask_existing` uses one started before (its processes are in 'peak MB (+cluster)').",
        "",
        md_table(*table_rows(doc["summary"])),
        "",
        "## Targets",
        "",
        "The Dask engine against the local one, same worker count, statistics cache off.",
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
            str(r.repeat),
            r.case,
            r.status,
            fmt(r.wall_s),
            fmt(harness.timing(r, "pass1_seconds")),
            fmt(harness.timing(r, "pass2_seconds")),
            harness.load_line(r),
            fmt(r.other_cpu_s, 1),
        ]
        for r in harness.runs_of(doc)
    ]
    parts += ["## Every run", "", md_table(head, rows), ""]
    return "\n".join(parts)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="readme",
        help="readme: 4000^2 x 20, threshold 0; outside: 5000^2 x 16, threshold 1 (scattered "
        "nodata that threshold 1 fills); --size/--layers/--threshold override it",
    )
    p.add_argument("--size", type=int, default=None)
    p.add_argument("--layers", type=int, default=None)
    p.add_argument("--threshold", type=int, default=None, help="nodata.threshold")
    p.add_argument("--layout", default="tiled", choices=("tiled", "striped"))
    p.add_argument("--name", default=None, help="file stem in --out (default: the preset's)")
    harness.add_options(p, out=HERE / "results" / "dask", workers=2, repeat=2, timeout=3600)
    args = harness.finish_options(p.parse_args(argv))
    for key, value in PRESETS[args.preset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    harness.exit_on_sigterm()
    ds = harness.ensure_stacks(args.python, args.data, args.size, args.layers, [args.layout])[
        args.layout
    ]
    suffix = f"_t{args.threshold}" if args.threshold else ""
    work = args.data / "runs" / f"dask_{ds.key}{suffix}"
    harness.warm_cache(ds.layer_dir.iterdir())
    identical: dict[str, bool] = {}
    bench = harness.Bench(
        args.out / args.name,
        args,
        machine=harness.machine_info(args.python, args.env, ("distributed", "dask")),
        summarize=lambda runs: summarize(runs, identical),
        render=render,
        dataset=ds.key,
        threshold=args.threshold,
        agreement=[],
    )
    cluster, address = start_cluster(args.python, args.workers, args.env)
    processing = {
        "local": {"engine": "local", "workers": args.workers},
        "dask": {"engine": "dask", "scheduler": "local", "workers": args.workers},
        "dask_existing": {"engine": "dask", "scheduler": address},
    }
    try:
        for round_, case in bench.rounds(CASES):
            output = work / case / "prediction.tif"
            config = work / case / "config.yaml"
            harness.write_yaml(
                config,
                harness.tool_config(
                    ds.layer_dir,
                    ds.manifest["nodata_value"],
                    {"path": str(ds.model_path)},
                    {"path": str(output), **CLASS_OUTPUT},
                    threshold=args.threshold,
                    processing=processing[case],
                ),
            )
            run = Case(
                name=case,
                command=[args.python, "-m", "windowed_classify", str(config), "--quiet"],
                run_dir=work / case,
                report=output.with_suffix(".report.json"),
                env=args.env,
                watch=[cluster.pid] if case == "dask_existing" else (),
            )
            bench.run(ds.key, case, run, round_, {"threshold": args.threshold})
    finally:
        stop_cluster(cluster)

    agreement = harness.compare_rasters({c: work / c / "prediction.tif" for c in CASES})
    identical |= {"local": True} | {
        a["b"]: bool(a.get("identical")) for a in agreement if a["a"] == "local"
    }
    bench.doc["agreement"] = agreement
    bench.save()
    print(f"\n{ds.key}, threshold {args.threshold}, {args.workers} workers, best of {args.repeat}")
    harness.print_table(*table_rows(bench.doc["summary"]))
    last_round = bench.runs[-len(CASES) :]
    bars = [(r.case, r.peak_rss_mb, r.status) for r in last_round]
    bars += [
        (f"{r.case} + cluster", r.watched_peak_rss_mb, r.status)
        for r in last_round
        if r.watched_peak_rss_mb
    ]
    plot = args.out / f"{args.name}_memory.png"
    plot_peaks(plot, bars, title=f"Peak memory, {ds.key}, threshold {args.threshold}, last round")
    bench.wrote(plot)
    ok = all(r.status == "ok" for r in bench.runs)
    return 0 if ok and all(identical.get(c) for c in CASES) else 1


if __name__ == "__main__":
    raise SystemExit(main())
