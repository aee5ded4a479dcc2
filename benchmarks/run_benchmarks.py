"""Benchmark windowed_classify against the in-memory notebook and two floors.

  python benchmarks/run_benchmarks.py --sizes 2000 4000 8000 --layers 20 \\
      --layouts tiled striped --runs notebook tool1 toolN floor_read floor_predict \\
      --out benchmarks/results

For every size and layout a synthetic stack (cached under benchmarks/data/) is classified
by each runner in its own process, measured for wall time and peak memory of the whole
process tree (psutil polls the summed RSS of the tree every --poll seconds; the maximum RSS
of any single process, from wait4(), is a floor for it). Writes benchmark.json,
benchmark.md and memory.png into --out. See benchmarks/README.md.

The optional ``pyspatialml`` runner (pyspatialml's ``Raster.predict``, in its own numpy<2
venv made by scripts/install-pyspatialml.sh) runs only when named in --runs, with
--pyspatialml-python VENV/bin/python.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import harness
import suite_report
from cases import (
    DEFAULT_RUNNERS,
    LAYOUTS,
    RUNNERS,
    RunResult,
    compare_outputs,
    ensure_stacks,
    prepare_pyspatialml,
    run_one,
)
from harness import CONTENTION

HERE = harness.HERE


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[2000, 4000, 8000],
        help="raster side lengths in pixels (default: 2000 4000 8000)",
    )
    ap.add_argument("--layers", type=int, default=20, help="layers per stack (default 20)")
    ap.add_argument("--layouts", nargs="+", choices=LAYOUTS, default=list(LAYOUTS))
    ap.add_argument(
        "--runs",
        nargs="+",
        choices=RUNNERS,
        default=list(DEFAULT_RUNNERS),
        help="runners, in the order they run (default: all but pyspatialml)",
    )
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument(
        "--data",
        type=Path,
        default=HERE / "data",
        help="cache of generated stacks and run outputs (default benchmarks/data)",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="workers for toolN (default: all cores)",
    )
    ap.add_argument(
        "--memory-mb",
        type=int,
        default=None,
        help="processing.memory_mb for the tool (default: the tool's default)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per runner; the table keeps min wall and max peak",
    )
    ap.add_argument(
        "--chunk-rows",
        type=int,
        default=1_000_000,
        help="rows per predict call in the notebook and predict floor",
    )
    ap.add_argument("--timeout", type=float, default=4 * 3600, help="seconds per run")
    ap.add_argument("--poll", type=float, default=0.05, help="RSS polling interval, seconds")
    ap.add_argument(
        "--notebook-max-gb",
        type=float,
        default=None,
        help="skip notebook/floor_predict when their estimated peak exceeds this "
        "(default: 85%% of RAM)",
    )
    ap.add_argument(
        "--python", default=sys.executable, help="interpreter for the runners (default: this one)"
    )
    ap.add_argument(
        "--pyspatialml-python",
        default=None,
        metavar="PYTHON",
        help="interpreter of the pyspatialml venv (scripts/install-pyspatialml.sh VENV), "
        "for the pyspatialml runner",
    )
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each run, wait up to this long for other processes to use "
        f"less than {CONTENTION} of a core (default 0: do not wait)",
    )
    ap.add_argument(
        "--render-only",
        action="store_true",
        help="only rewrite benchmark.md and memory.png from --out/benchmark.json",
    )
    ap.add_argument(
        "--no-warm",
        action="store_true",
        help="do not pre-read the stack into the page cache before each layout",
    )
    args = ap.parse_args(argv)
    args.data = args.data.resolve()  # the configs hold absolute paths (YAML-relative otherwise)
    if args.notebook_max_gb is None:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
        args.notebook_max_gb = round(0.85 * ram, 1)
    return args


def render_only(out: Path) -> int:
    doc = json.loads((out / "benchmark.json").read_text())
    runs = [RunResult(**r) for r in doc["runs"]]
    doc["summary"] = suite_report.summarize(runs)
    suite_report.write_markdown(out / "benchmark.md", doc)
    suite_report.write_plot(out / "memory.png", doc["summary"], int(doc["args"]["layers"]))
    suite_report.print_summary(doc["summary"])
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render_only:
        return render_only(args.out)
    harness.exit_on_sigterm()
    args.out.mkdir(parents=True, exist_ok=True)
    needs_tool = any(r in ("tool1", "toolN") for r in args.runs)
    args.tool_missing = harness.tool_available(args.python) if needs_tool else None
    if args.tool_missing:
        print(f"warning: {args.tool_missing}; tool runs are skipped", file=sys.stderr)
    args.pyspatialml_models, args.pyspatialml_missing = {}, {}  # model.pkl -> twin / reason
    doc: dict[str, Any] = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "finished": None,
        "machine": harness.machine_info(args.python),
        "args": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if not k.startswith("pyspatialml_") or k == "pyspatialml_python"
        },
        "datasets": {},
        "runs": [],
        "agreement": [],
    }
    runs: list[RunResult] = []

    def save() -> None:
        doc["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        doc["runs"] = [asdict(r) for r in runs]
        doc["summary"] = suite_report.summarize(runs)
        harness.write_json(args.out / "benchmark.json", doc)
        suite_report.write_markdown(args.out / "benchmark.md", doc)

    for size in sorted(args.sizes):
        datasets = ensure_stacks(args.python, args.data, size, args.layers, args.layouts)
        if "pyspatialml" in args.runs:
            for ds in datasets.values():
                prepare_pyspatialml(args, size, ds.model_path)
        for layout, ds in datasets.items():
            model_meta = json.loads((ds.root / "model.json").read_text())
            doc["datasets"][ds.key] = {**ds.manifest, "model": model_meta}
            if not args.no_warm:
                harness.warm_cache(ds.layer_dir.iterdir())
            run_root = args.data / "runs" / ds.key
            for repeat in range(args.repeat):
                for runner in args.runs:
                    print(
                        f"[{ds.key}] {runner} (run {repeat + 1}/{args.repeat}) ...",
                        end=" ",
                        flush=True,
                    )
                    res = run_one(runner, ds, args, run_root / runner, repeat)
                    runs.append(res)
                    harness.print_outcome(res)
                    save()
            for entry in compare_outputs(run_root, args.runs):
                doc["agreement"].append({"size": size, "layout": layout, **entry})
            save()

    print()
    suite_report.print_summary(suite_report.summarize(runs))
    suite_report.write_plot(args.out / "memory.png", suite_report.summarize(runs), args.layers)
    print(f"\nwrote {args.out / 'benchmark.json'}, benchmark.md, memory.png")
    return 0 if all(r.status in ("ok", "skipped") for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
