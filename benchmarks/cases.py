"""The size suite's cases: one synthetic stack, one runner, one process.

Runners (benchmarks/README.md, "The runners"): ``notebook`` (notebook_baseline.py),
``tool1`` and ``toolN`` (``python -m windowed_classify``), ``floor_read`` and
``floor_predict`` (floors.py), and ``pyspatialml`` (pyspatialml_baseline.py in its own
venv). :func:`size_case` writes a runner's config and returns the case for
``harness.Bench.run``; each run's ``params`` say which stack it measured.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import harness
from harness import CLASS_OUTPUT, Case, Stack

HERE = harness.HERE
LAYOUTS = ("tiled", "striped")
RUNNERS = ("notebook", "tool1", "toolN", "floor_read", "floor_predict", "pyspatialml")
DEFAULT_RUNNERS = RUNNERS[:5]  # pyspatialml needs its own venv: only when asked for
TOOL_RUNNERS = ("notebook", "tool1", "toolN", "pyspatialml")  # they write classified rasters
# Measured peak of notebook_baseline.py is about this many times the raw float32 stack
# (DataFrame, NaN mask, filled copy of the valid rows, GDAL cache); used to skip sizes that
# cannot fit in RAM instead of swapping or being OOM-killed.
NOTEBOOK_RAM_FACTOR = 3.0


def params(ds: Stack) -> dict[str, Any]:
    return {"size": ds.size, "layers": ds.layers, "layout": ds.layout, "pixels": ds.pixels}


def command_for(
    runner: str, args: argparse.Namespace, config: Path, result: Path, pysp: Pyspatialml
) -> list[str]:
    py = args.python
    if runner == "notebook":
        return [
            *(py, str(HERE / "notebook_baseline.py"), str(config)),
            *("--chunk-rows", str(args.chunk_rows), "--result", str(result)),
        ]
    if runner in ("tool1", "toolN"):
        workers = 1 if runner == "tool1" else args.workers
        return [py, "-m", "windowed_classify", str(config), "--workers", str(workers), "--quiet"]
    if runner == "floor_read":
        return [py, str(HERE / "floors.py"), "read", str(config), "--result", str(result)]
    if runner == "floor_predict":
        return [
            *(py, str(HERE / "floors.py"), "predict", str(config)),
            *("--chunk-rows", str(args.chunk_rows), "--result", str(result)),
        ]
    if runner == "pyspatialml":
        cfg = harness.read_yaml(config)
        return [
            *(args.pyspatialml_python, str(HERE / "pyspatialml_baseline.py"), "predict"),
            *("--layer-dir", cfg["rasters"]["folder"]),
            *("--model", str(pysp.models[cfg["model"]["path"]])),
            *("--output", cfg["output"]["path"], "--result", str(result)),
        ]
    raise ValueError(runner)


def size_case(
    runner: str, ds: Stack, args: argparse.Namespace, run_dir: Path, pysp: Pyspatialml
) -> Case | str:
    """The case to run, or why it is skipped."""
    if runner in ("tool1", "toolN") and args.tool_missing:
        return args.tool_missing
    if runner == "pyspatialml" and str(ds.model_path) not in pysp.models:
        return pysp.missing.get(str(ds.model_path), "not prepared")
    if runner in ("notebook", "floor_predict"):
        need_gb = NOTEBOOK_RAM_FACTOR * ds.pixels * ds.layers * 4 / 1024**3 + 0.5
        if need_gb > args.notebook_max_gb:
            return f"estimated {need_gb:.1f} GB > --notebook-max-gb {args.notebook_max_gb:.1f}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    output = run_dir / "prediction.tif"
    config = run_dir / "config.yaml"
    result = run_dir / "result.json"
    processing = {} if args.memory_mb is None else {"memory_mb": args.memory_mb}
    harness.write_yaml(
        config,
        harness.tool_config(
            ds.layer_dir,
            ds.manifest["nodata_value"],
            {"path": str(ds.model_path)},
            {"path": str(output), **CLASS_OUTPUT},
            processing=processing,
        ),
    )
    is_tool = runner in ("tool1", "toolN")
    return Case(
        name=runner,
        command=command_for(runner, args, config, result, pysp),
        run_dir=run_dir,
        report=output.with_suffix(".report.json") if is_tool else None,
        result=None if is_tool else result,
        env=args.env,
        params=params(ds),
    )


def compare_outputs(run_root: Path, runners: list[str]) -> list[dict[str, Any]]:
    """Pixel-by-pixel agreement of the classified rasters the runners wrote."""
    names = [r for r in TOOL_RUNNERS if r in runners]
    return harness.compare_rasters({r: run_root / r / "prediction.tif" for r in names})


class Pyspatialml:
    """The pyspatialml runner's models: model.pkl -> its integer-label twin, or why none."""

    def __init__(self) -> None:
        self.models: dict[str, Path] = {}
        self.missing: dict[str, str] = {}

    def prepare(self, args: argparse.Namespace, size: int, model_path: Path) -> None:
        """Make the integer-label twin of ``model_path`` in the pyspatialml venv (not
        measured).

        The numpy-2 pickle cannot be loaded under numpy<2: pyspatialml_trainset.py (this
        venv) rebuilds the exact training rows and checks them against model.pkl, then
        pyspatialml_baseline.py train (pyspatialml venv) fits the same forest on them with
        integer labels and checks that every tree is the same. Both steps are cached."""
        key = str(model_path)
        if key in self.models or key in self.missing:
            return
        if not args.pyspatialml_python:
            self.missing[key] = (
                "the pyspatialml runner needs --pyspatialml-python VENV/bin/python "
                "(scripts/install-pyspatialml.sh VENV makes it)"
            )
            return
        trainset = [args.python, str(HERE / "pyspatialml_trainset.py"), "--data", str(args.data)]
        steps = [
            [*trainset, "--size", str(size), "--layers", str(args.layers)],
            [args.pyspatialml_python, str(HERE / "pyspatialml_baseline.py"), "train"],
        ]
        out = ""
        for cmd in steps:
            if out:
                cmd.append(out)
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
                self.missing[key] = f"pyspatialml model not prepared: {last}"
                print(f"warning: {self.missing[key]}", file=sys.stderr)
                return
            out = proc.stdout.strip().splitlines()[-1]
        self.models[key] = Path(out)
