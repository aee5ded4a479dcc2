"""What each extra output of #14 costs: time and peak memory against a plain run, side by side.

On one synthetic stack (datagen.py: 4000^2 x 20 by default) every case is
``python -m windowed_classify`` in its own process, measured by harness.py (wall time, peak
RSS of the process tree), with the statistics cache off so each run is whole:

- the suite's RandomForestClassifier: ``classes`` (plain), then one extra output each:
  ``probabilities``, ``confidence``, ``entropy``, ``margin``, ``di_aoa`` (output.di and
  output.aoa, with a training table of ``--train-points`` pixels sampled from the stack by
  the tool's own ``sample``, folds ``random: 5``);
- a quantile regression forest trained on that table (a synthetic target of the layers):
  ``regression`` (plain), ``spread``, ``quantiles`` (0.05, 0.5, 0.95).

Rounds alternate the cases so that load on a shared machine falls on all alike; the table
keeps each case's best pass-2 and wall time and its highest peak, and gives the extra over its
plain run. Writes ``<out>/bench_outputs.json`` and ``.md``.

    python benchmarks/bench_outputs.py                        # 4000^2 x 20, a quiet machine
    python benchmarks/bench_outputs.py --size 500 --repeat 1  # a quick check
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import harness
import yaml
from cases import ensure_stacks
from datagen import Dataset
from harness import Case, CaseResult, fmt, md_table

HERE = harness.HERE
LEVELS = [0.05, 0.5, 0.95]
CLASS_CASES = ("classes", "probabilities", "confidence", "entropy", "margin", "di_aoa")
REGRESSION_CASES = ("regression", "spread", "quantiles")
BASELINE = {c: "classes" for c in CLASS_CASES} | {c: "regression" for c in REGRESSION_CASES}


# --------------------------------------------------------------------------- set-up (a child)


def make_training(args: argparse.Namespace) -> int:
    """In a child process: sample the training table with the tool and train the regressor.
    Prints {"table": ..., "regressor": ...} as one JSON line."""
    import numpy as np
    import pandas as pd
    import rasterio
    from quantile_forest import RandomForestQuantileRegressor

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    first = sorted(Path(args.layer_dir).glob("*.tif"))[0]
    with rasterio.open(first) as ds:
        t, height, width = ds.transform, ds.height, ds.width
    rng = np.random.default_rng(42)
    n = args.train_points
    rows, cols = rng.integers(0, height, n), rng.integers(0, width, n)
    pd.DataFrame({"x": t.c + (cols + 0.5) * t.a, "y": t.f + (rows + 0.5) * t.e}).to_csv(
        work / "points.csv", index=False
    )
    config = work / "sample.yaml"
    config.write_text(
        yaml.safe_dump(
            {"rasters": {"folder": args.layer_dir}, "nodata": {"values": [args.nodata_value]}}
        )
    )
    table = work / "training.csv"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "windowed_classify",
            "sample",
            str(config),
            str(work / "points.csv"),
            "-o",
            str(table),
            "--overwrite",
            "--quiet",
        ],
        check=True,
    )
    frame = pd.read_csv(table)
    names = [c for c in frame.columns if c not in ("x", "y")]
    usable = frame.dropna(subset=names)
    x = usable[names].astype(np.float64)
    z = (x - x.mean()) / x.std()
    weights = np.random.default_rng(1).normal(0, 1, len(names))
    y = z.to_numpy() @ weights + np.sin(z.iloc[:, 0].to_numpy()) + rng.normal(0, 0.3, len(z))
    model = RandomForestQuantileRegressor(
        n_estimators=50, max_depth=12, min_samples_leaf=5, random_state=0
    ).fit(x, y)
    regressor = work / "regressor.pkl"
    import joblib

    joblib.dump(model, regressor)
    print(json.dumps({"table": str(table), "regressor": str(regressor), "rows": len(usable)}))
    return 0


def prepare(args: argparse.Namespace, ds: Dataset, work: Path, env: dict[str, str]) -> dict:
    cmd = [
        args.python,
        str(Path(__file__).resolve()),
        "--make-training",
        "--layer-dir",
        str(ds.layer_dir),
        "--work",
        str(work),
        "--train-points",
        str(args.train_points),
        f"--nodata-value={ds.manifest['nodata_value']!r}",
    ]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- cases


def case_config(case: str, ds: Dataset, made: dict, out: Path, args: argparse.Namespace) -> dict:
    regression = case in REGRESSION_CASES
    output: dict[str, Any] = {"path": str(out / "main.tif"), "overwrite": True}
    extra = {
        "probabilities": "probabilities.tif",
        "confidence": "confidence.tif",
        "entropy": "entropy.tif",
        "margin": "margin.tif",
        "spread": "spread.tif",
    }
    if case in extra:
        output[case] = str(out / extra[case])
    elif case == "quantiles":
        output["quantiles"] = {"path": str(out / "quantiles.tif"), "levels": LEVELS}
    elif case == "di_aoa":
        output |= {"di": str(out / "di.tif"), "aoa": str(out / "aoa.tif")}
    cfg: dict[str, Any] = {
        "rasters": {"folder": str(ds.layer_dir), "extensions": [".tif"]},
        "nodata": {"values": [ds.manifest["nodata_value"]]},
        "model": {"path": made["regressor"] if regression else str(ds.model_path)},
        "output": output,
        "processing": {"stats_cache": False, "workers": args.workers},
    }
    if case == "di_aoa":
        cfg["aoa"] = {"training": made["table"], "folds": {"random": 5}}
    return cfg


def record(res: CaseResult, round_: int) -> dict[str, Any]:
    timing = res.detail.get("timing") or {}
    return {
        "case": res.case,
        "round": round_,
        "status": res.status,
        "wall_seconds": res.wall_s,
        "pass2_seconds": timing.get("pass2_seconds"),
        "total_seconds": timing.get("total_seconds"),
        "tree_peak_rss_mb": res.peak_rss_mb,
        "peak_memory_mb": res.detail.get("peak_memory_mb"),
        "windows": res.detail.get("windows"),
        "load_before": res.load_avg,
        "other_cpu_seconds": res.other_cpu_s,
        "error": res.error,
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    best: dict[str, dict[str, Any]] = {}
    for case in (*CLASS_CASES, *REGRESSION_CASES):
        mine = [r for r in runs if r["case"] == case and r["status"] == "ok"]
        if not mine:
            best[case] = {"status": "failed"}
            continue

        def low(key: str, rows: list[dict[str, Any]] = mine) -> float | None:
            values = [r[key] for r in rows if r[key] is not None]
            return min(values) if values else None

        best[case] = {
            "status": "ok",
            "wall_seconds": low("wall_seconds"),
            "pass2_seconds": low("pass2_seconds"),
            "peak_mb": max(r["tree_peak_rss_mb"] or 0 for r in mine),
        }
    for case, s in best.items():
        base = best.get(BASELINE[case], {})
        if s.get("status") != "ok" or base.get("status") != "ok":
            continue
        for key in ("wall_seconds", "pass2_seconds", "peak_mb"):
            if s[key] is not None and base[key] is not None:
                s[f"extra_{key}"] = s[key] - base[key]
        if s["pass2_seconds"] and base["pass2_seconds"]:
            s["pass2_ratio"] = s["pass2_seconds"] / base["pass2_seconds"]
    return best


def table(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = [
        "output",
        "model",
        "wall s",
        "pass 2 s",
        "extra pass 2 s",
        "pass 2 ratio",
        "extra wall s",
        "peak MB",
        "extra MB",
    ]
    rows = []
    for case, s in summary.items():
        model = "regression forest" if case in REGRESSION_CASES else "classifier"
        rows.append(
            [
                case,
                model,
                fmt(s.get("wall_seconds")),
                fmt(s.get("pass2_seconds")),
                fmt(s.get("extra_pass2_seconds")),
                fmt(s.get("pass2_ratio")),
                fmt(s.get("extra_wall_seconds")),
                fmt(s.get("peak_mb"), 0),
                fmt(s.get("extra_peak_mb"), 0),
            ]
        )
    return head, rows


def write_markdown(path: Path, doc: dict[str, Any]) -> None:
    m = doc["machine"]
    parts = [
        f"# The cost of each extra output: {doc['dataset']}",
        "",
        f"{m.get('cpu_count')} CPUs ({m.get('cpu_model', '?')}), {m.get('ram_gb')} GB RAM, "
        f"Python {m.get('python')}, commit {str(m.get('git_commit'))[:10]}. {doc['workers']} "
        f"workers, best of {doc['repeat']} alternating rounds, statistics cache off. The "
        f"classifier is the suite's RandomForestClassifier (50 trees); the regression forest "
        f"a RandomForestQuantileRegressor (50 trees, depth 12) trained on {doc['training_rows']} "
        "pixels sampled by `sample`, which is also the AOA's training table (random 5 folds). "
        "Extra: against the same model's plain run (`classes` or `regression`).",
        "",
        md_table(*table(doc["summary"])),
        "",
    ]
    path.write_text("\n".join(parts))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=4000)
    p.add_argument("--layers", type=int, default=20)
    p.add_argument("--layout", default="tiled", choices=("tiled", "striped"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeat", type=int, default=2, help="rounds of every case, alternated")
    p.add_argument("--train-points", type=int, default=2000, help="training table size")
    p.add_argument(
        "--cases",
        nargs="+",
        choices=(*CLASS_CASES, *REGRESSION_CASES),
        default=None,
        help="a subset (each with its plain run); default: all",
    )
    p.add_argument("--data", type=Path, default=HERE / "data")
    p.add_argument("--out", type=Path, default=HERE / "results" / "outputs")
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
    # the set-up child (internal)
    p.add_argument("--make-training", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--layer-dir", help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--nodata-value", type=float, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.data = args.data.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.make_training:
        return make_training(args)
    harness.exit_on_sigterm()
    env = harness.package_env(args.package_root.resolve())
    ds = ensure_stacks(args.python, args.data, args.size, args.layers, [args.layout])[args.layout]
    work = args.data / "runs" / f"outputs_{ds.key}"
    made = prepare(args, ds, work / "training", env)
    harness.warm_cache(ds.layer_dir.iterdir())
    wanted = args.cases or [*CLASS_CASES, *REGRESSION_CASES]
    cases = list(dict.fromkeys(c for w in wanted for c in (BASELINE[w], w)))
    runs: list[dict[str, Any]] = []
    for round_ in range(args.repeat):
        for case in cases:
            out = work / case
            config = out / "config.yaml"
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text(
                yaml.safe_dump(case_config(case, ds, made, out, args), sort_keys=False)
            )
            print(f"round {round_} {case:14s} ...", end=" ", flush=True)
            res = harness.run_case(
                Case(
                    name=case,
                    run_dir=out,
                    env=env,
                    report=out / "main.report.json",
                    command=[args.python, "-m", "windowed_classify", str(config), "--quiet"],
                ),
                timeout=args.timeout,
                poll=args.poll,
                wait_idle_s=args.wait_idle,
                repeat=round_,
            )
            harness.print_outcome(res)
            runs.append(record(res, round_))
    summary = {c: s for c, s in summarize(runs).items() if c in cases}
    print(f"\n{ds.key}, {args.workers} workers, best of {args.repeat}")
    harness.print_table(*table(summary))
    doc = {
        "dataset": ds.key,
        "workers": args.workers,
        "repeat": args.repeat,
        "training_rows": made["rows"],
        "machine": harness.machine_info(args.python, env, ("scikit-learn", "quantile-forest")),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "summary": summary,
        "runs": runs,
    }
    stem = args.out / "bench_outputs"
    harness.write_json(stem.with_suffix(".json"), doc)
    write_markdown(stem.with_suffix(".md"), doc)
    print(f"\nwrote {stem}.json and {stem.name}.md")
    return 0 if all(r["status"] == "ok" for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
