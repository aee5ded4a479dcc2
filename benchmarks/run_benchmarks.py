"""Benchmark windowed_classify against the in-memory notebook and two floors.

  python benchmarks/run_benchmarks.py --sizes 2000 4000 8000 --layers 20 \\
      --layouts tiled striped --runs notebook tool1 toolN floor_read floor_predict \\
      --out benchmarks/results

For every size and layout a synthetic stack (cached under benchmarks/data/) is classified
by each runner in its own process, measured for wall time and peak memory of the whole
process tree (harness.py). Writes benchmark.json, benchmark.md and memory.png into --out.
See benchmarks/README.md.

The optional ``pyspatialml`` runner (pyspatialml's ``Raster.predict``, in its own numpy<2
venv made by scripts/install-pyspatialml.sh) runs only when named in --runs, with
--pyspatialml-python VENV/bin/python.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import harness
import suite_report
from cases import (
    DEFAULT_RUNNERS,
    LAYOUTS,
    RUNNERS,
    Pyspatialml,
    compare_outputs,
    params,
    size_case,
)

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
    harness.add_options(
        ap,
        out=HERE / "results",
        workers=os.cpu_count() or 1,
        repeat=1,
        timeout=4 * 3600,
        package_root=False,
        workers_help="workers for toolN (default: all cores)",
        repeat_help="runs per runner; the table keeps min wall and max peak",
    )
    ap.add_argument(
        "--memory-mb",
        type=int,
        default=None,
        help="processing.memory_mb for the tool (default: the tool's default)",
    )
    ap.add_argument(
        "--chunk-rows",
        type=int,
        default=1_000_000,
        help="rows per predict call in the notebook and predict floor",
    )
    ap.add_argument(
        "--notebook-max-gb",
        type=float,
        default=None,
        help="skip notebook/floor_predict when their estimated peak exceeds this "
        "(default: 85%% of RAM)",
    )
    ap.add_argument(
        "--pyspatialml-python",
        default=None,
        metavar="PYTHON",
        help="interpreter of the pyspatialml venv (scripts/install-pyspatialml.sh VENV), "
        "for the pyspatialml runner",
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
    args = harness.finish_options(ap.parse_args(argv))
    if args.notebook_max_gb is None:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
        args.notebook_max_gb = round(0.85 * ram, 1)
    return args


def render_only(out: Path) -> int:
    doc = json.loads((out / "benchmark.json").read_text())
    doc["summary"] = suite_report.summarize(harness.runs_of(doc))
    (out / "benchmark.md").write_text(suite_report.render(doc))
    suite_report.write_plot(out / "memory.png", doc["summary"], int(doc["args"]["layers"]))
    suite_report.print_summary(doc["summary"])
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render_only:
        return render_only(args.out)
    harness.exit_on_sigterm()
    needs_tool = any(r in ("tool1", "toolN") for r in args.runs)
    args.tool_missing = harness.tool_available(args.python) if needs_tool else None
    if args.tool_missing:
        print(f"warning: {args.tool_missing}; tool runs are skipped", file=sys.stderr)
    bench = harness.Bench(
        args.out / "benchmark",
        args,
        machine=harness.machine_info(args.python),
        summarize=suite_report.summarize,
        render=suite_report.render,
        datasets={},
        agreement=[],
    )
    pysp = Pyspatialml()
    for size in sorted(args.sizes):
        datasets = harness.ensure_stacks(args.python, args.data, size, args.layers, args.layouts)
        if "pyspatialml" in args.runs:
            for ds in datasets.values():
                pysp.prepare(args, size, ds.model_path)
        for layout, ds in datasets.items():
            model_meta = json.loads((ds.root / "model.json").read_text())
            bench.doc["datasets"][ds.key] = {**ds.manifest, "model": model_meta}
            if not args.no_warm:
                harness.warm_cache(ds.layer_dir.iterdir())
            run_root = args.data / "runs" / ds.key
            for round_, runner in bench.rounds(args.runs):
                case = size_case(runner, ds, args, run_root / runner, pysp)
                bench.run(ds.key, runner, case, round_, params(ds))
            for entry in compare_outputs(run_root, args.runs):
                bench.doc["agreement"].append({"size": size, "layout": layout, **entry})
            bench.save()

    print()
    suite_report.print_summary(bench.doc["summary"])
    suite_report.write_plot(args.out / "memory.png", bench.doc["summary"], args.layers)
    bench.wrote(args.out / "memory.png")
    return 0 if all(r.status in ("ok", "skipped") for r in bench.runs) else 1


if __name__ == "__main__":
    sys.exit(main())
