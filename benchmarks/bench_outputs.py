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
from harness import Case, CaseResult, Stack, fmt, md_table

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


def prepare(args: argparse.Namespace, ds: Stack, work: Path) -> dict:
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
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True, env=args.env)
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- cases


def case_config(case: str, ds: Stack, made: dict, out: Path, args: argparse.Namespace) -> dict:
    regression = case in REGRESSION_CASES
    output: dict[str, Any] = {"path": str(out / "main.tif")}
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
    cfg = harness.tool_config(
        ds.layer_dir,
        ds.manifest["nodata_value"],
        {"path": made["regressor"] if regression else str(ds.model_path)},
        output,
        processing={"workers": args.workers},
    )
    if case == "di_aoa":
        cfg["aoa"] = {"training": made["table"], "folds": {"random": 5}}
    return cfg


def summarize(runs: list[CaseResult]) -> dict[str, Any]:
    """Per case: its best pass 2 and wall time and its highest peak, and the extra of each
    over its plain run."""
    best: dict[str, dict[str, Any]] = {}
    ran = {r.case for r in runs}
    for case in (c for c in (*CLASS_CASES, *REGRESSION_CASES) if c in ran):
        mine = [r for r in runs if r.case == case and r.status == "ok"]
        if not mine:
            best[case] = {"status": "failed"}
            continue
        best[case] = {
            "status": "ok",
            "wall_seconds": harness.lowest(r.wall_s for r in mine),
            "pass2_seconds": harness.lowest(harness.timing(r, "pass2_seconds") for r in mine),
            "peak_mb": max(r.peak_rss_mb or 0 for r in mine),
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


def render(doc: dict[str, Any]) -> str:
    """bench_outputs.md."""
    a = doc["args"]
    parts = [
        f"# The cost of each extra output: {doc['dataset']}",
        "",
        f"{harness.machine_line(doc['machine'], 'quantile-forest')} {a['workers']} workers, "
        f"best of {a['repeat']} alternating rounds, statistics cache off. The classifier is "
        "the suite's RandomForestClassifier (50 trees); the regression forest a "
        f"RandomForestQuantileRegressor (50 trees, depth 12) trained on {doc['training_rows']} "
        "pixels sampled by `sample`, which is also the AOA's training table (random 5 folds). "
        "Extra: against the same model's plain run (`classes` or `regression`).",
        "",
        md_table(*table(doc["summary"])),
        "",
    ]
    return "\n".join(parts)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=4000)
    p.add_argument("--layers", type=int, default=20)
    p.add_argument("--layout", default="tiled", choices=("tiled", "striped"))
    p.add_argument("--train-points", type=int, default=2000, help="training table size")
    p.add_argument(
        "--cases",
        nargs="+",
        choices=(*CLASS_CASES, *REGRESSION_CASES),
        default=None,
        help="a subset (each with its plain run); default: all",
    )
    harness.add_options(p, out=HERE / "results" / "outputs", workers=2, repeat=2, timeout=3600)
    # the set-up child (internal)
    p.add_argument("--make-training", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--layer-dir", help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--nodata-value", type=float, help=argparse.SUPPRESS)
    return harness.finish_options(p.parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.make_training:
        return make_training(args)
    harness.exit_on_sigterm()
    ds = harness.ensure_stacks(args.python, args.data, args.size, args.layers, [args.layout])[
        args.layout
    ]
    work = args.data / "runs" / f"outputs_{ds.key}"
    made = prepare(args, ds, work / "training")
    harness.warm_cache(ds.layer_dir.iterdir())
    wanted = args.cases or [*CLASS_CASES, *REGRESSION_CASES]
    cases = list(dict.fromkeys(c for w in wanted for c in (BASELINE[w], w)))
    bench = harness.Bench(
        args.out / "bench_outputs",
        args,
        machine=harness.machine_info(args.python, args.env, ("quantile-forest",)),
        summarize=summarize,
        render=render,
        dataset=ds.key,
        training_rows=made["rows"],
    )
    for round_, case in bench.rounds(cases):
        out = work / case
        config = out / "config.yaml"
        harness.write_yaml(config, case_config(case, ds, made, out, args))
        run = Case(
            name=case,
            run_dir=out,
            env=args.env,
            report=out / "main.report.json",
            command=[args.python, "-m", "windowed_classify", str(config), "--quiet"],
        )
        bench.run(ds.key, case, run, round_, {})
    print(f"\n{ds.key}, {args.workers} workers, best of {args.repeat}")
    harness.print_table(*table(bench.doc["summary"]))
    bench.wrote()
    return 0 if all(r.status == "ok" for r in bench.runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
