"""The size suite's cases: one synthetic stack, one runner, one process.

Runners (benchmarks/README.md, "The runners"): ``notebook`` (notebook_baseline.py),
``tool1`` and ``toolN`` (``python -m windowed_classify``), ``floor_read`` and
``floor_predict`` (floors.py), and ``pyspatialml`` (pyspatialml_baseline.py in its own
venv). Each gets a config written from the stack (``write_config``) and is measured by
``harness.run_case``; ``run_one`` returns the suite's record, :class:`RunResult`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import harness
import yaml
from datagen import Dataset as Stack  # the record datagen.py writes (run from benchmarks/)

HERE = harness.HERE
LAYOUTS = ("tiled", "striped")
RUNNERS = ("notebook", "tool1", "toolN", "floor_read", "floor_predict", "pyspatialml")
DEFAULT_RUNNERS = RUNNERS[:5]  # pyspatialml needs its own venv: only when asked for
TOOL_RUNNERS = ("notebook", "tool1", "toolN", "pyspatialml")  # they write classified rasters
# Measured peak of notebook_baseline.py is about this many times the raw float32 stack
# (DataFrame, NaN mask, filled copy of the valid rows, GDAL cache); used to skip sizes that
# cannot fit in RAM instead of swapping or being OOM-killed.
NOTEBOOK_RAM_FACTOR = 3.0


# --------------------------------------------------------------------------- data


def stack_command(args: argparse.Namespace, script: str, size: int) -> list[str]:
    """A script of this folder, run by the benchmark's Python on one generated stack."""
    return [
        args.python,
        str(HERE / script),
        *("--data", str(args.data), "--size", str(size), "--layers", str(args.layers)),
    ]


def ensure_stacks(
    python: str, data: Path, size: int, layers: int, layouts: list[str]
) -> dict[str, Stack]:
    """Generate (or reuse) the stacks in a child process: the harness stays small, so
    that wait4's ru_maxrss of the runners (which starts at the parent's RSS) is theirs."""
    cmd = [python, str(HERE / "datagen.py"), "--data", str(data), "--size", str(size)]
    proc = subprocess.run(
        [*cmd, "--layers", str(layers), "--layouts", *layouts],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        layout: Stack(
            d["size"],
            d["layers"],
            d["layout"],
            Path(d["root"]),
            Path(d["layer_dir"]),
            Path(d["model_path"]),
            d["manifest"],
        )
        for layout, d in found.items()
    }


# --------------------------------------------------------------------------- runners


@dataclass
class RunResult:
    size: int
    layers: int
    layout: str
    pixels: int
    runner: str
    repeat: int
    status: str  # ok | failed | timeout | skipped
    wall_s: float | None = None
    timed_s: float | None = None  # floors: the timed section; tool: report total; notebook
    peak_rss_mb: float | None = None
    tree_peak_rss_mb: float | None = None
    max_process_rss_mb: float | None = None
    max_processes: int | None = None
    cpu_s: float | None = None
    samples: int | None = None
    returncode: int | None = None
    command: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    other_cpu_s: float | None = None
    leftover_processes: list[str] = field(default_factory=list)
    harness_rss_mb: float | None = None  # max 1-proc MB is never below this (see measure)
    waited_idle_s: float | None = None  # --wait-idle: seconds spent waiting before the run
    load_avg: list[float] | None = None  # 1, 5, 15 min load average just before the run


_IDENTITY = ("size", "layers", "layout", "pixels", "runner", "repeat", "status")
_MEASURED = tuple(f.name for f in fields(RunResult) if f.name not in _IDENTITY)


def write_config(path: Path, ds: Stack, output: Path, memory_mb: int | None) -> None:
    cfg: dict[str, Any] = {
        "rasters": {"folder": str(ds.layer_dir), "extensions": [".tif"]},
        "nodata": {
            "values": [ds.manifest["nodata_value"]],
            "use_file_nodata": True,
            "threshold": 0,
        },
        "model": {"path": str(ds.model_path)},
        "output": {
            "path": str(output),
            "dtype": "uint8",
            "nodata": 255,
            "compress": "lzw",
            "overwrite": True,
        },
        "processing": {"stats_cache": False},
    }
    if memory_mb is not None:
        cfg["processing"]["memory_mb"] = memory_mb
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def command_for(runner: str, args: argparse.Namespace, config: Path, result: Path) -> list[str]:
    py = args.python
    if runner == "notebook":
        return [
            py,
            str(HERE / "notebook_baseline.py"),
            str(config),
            "--chunk-rows",
            str(args.chunk_rows),
            "--result",
            str(result),
        ]
    if runner == "tool1":
        return [py, "-m", "windowed_classify", str(config), "--workers", "1", "--quiet"]
    if runner == "toolN":
        return [
            py,
            "-m",
            "windowed_classify",
            str(config),
            "--workers",
            str(args.workers),
            "--quiet",
        ]
    if runner == "floor_read":
        return [py, str(HERE / "floors.py"), "read", str(config), "--result", str(result)]
    if runner == "pyspatialml":
        cfg = yaml.safe_load(config.read_text())
        return [
            args.pyspatialml_python,
            str(HERE / "pyspatialml_baseline.py"),
            "predict",
            "--layer-dir",
            cfg["rasters"]["folder"],
            "--model",
            str(args.pyspatialml_models[cfg["model"]["path"]]),
            "--output",
            cfg["output"]["path"],
            "--result",
            str(result),
        ]
    if runner == "floor_predict":
        return [
            py,
            str(HERE / "floors.py"),
            "predict",
            str(config),
            "--chunk-rows",
            str(args.chunk_rows),
            "--result",
            str(result),
        ]
    raise ValueError(runner)


def run_one(
    runner: str, ds: Stack, args: argparse.Namespace, run_dir: Path, repeat: int
) -> RunResult:
    base = RunResult(ds.size, ds.layers, ds.layout, ds.pixels, runner, repeat, "skipped")
    if runner in ("tool1", "toolN") and args.tool_missing:
        base.error = args.tool_missing
        return base
    if runner == "pyspatialml" and str(ds.model_path) not in args.pyspatialml_models:
        base.error = args.pyspatialml_missing.get(str(ds.model_path), "not prepared")
        return base
    if runner in ("notebook", "floor_predict"):
        need_gb = NOTEBOOK_RAM_FACTOR * ds.pixels * ds.layers * 4 / 1024**3 + 0.5
        if need_gb > args.notebook_max_gb:
            base.error = (
                f"estimated {need_gb:.1f} GB > --notebook-max-gb {args.notebook_max_gb:.1f}"
            )
            return base

    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    output = run_dir / "prediction.tif"
    config = run_dir / "config.yaml"
    result_path = run_dir / "result.json"
    write_config(config, ds, output, args.memory_mb)
    is_tool = runner in ("tool1", "toolN")
    case = harness.Case(
        name=runner,
        command=command_for(runner, args, config, result_path),
        run_dir=run_dir,
        report=output.with_suffix(".report.json") if is_tool else None,
        result=None if is_tool else result_path,
    )
    res = harness.run_case(
        case, timeout=args.timeout, poll=args.poll, wait_idle_s=args.wait_idle, repeat=repeat
    )
    return RunResult(
        ds.size,
        ds.layers,
        ds.layout,
        ds.pixels,
        runner,
        repeat,
        res.status,
        **{k: getattr(res, k) for k in _MEASURED},
    )


def compare_outputs(run_root: Path, runners: list[str]) -> list[dict[str, Any]]:
    """Pixel-by-pixel agreement of the classified rasters the runners wrote."""
    names = [r for r in TOOL_RUNNERS if r in runners]
    return harness.compare_rasters({r: run_root / r / "prediction.tif" for r in names})


def prepare_pyspatialml(args: argparse.Namespace, size: int, model_path: Path) -> None:
    """Make the integer-label twin of ``model_path`` in the pyspatialml venv (not measured).

    The numpy-2 pickle cannot be loaded under numpy<2: pyspatialml_trainset.py (this venv)
    rebuilds the exact training rows and checks them against model.pkl, then
    pyspatialml_baseline.py train (pyspatialml venv) fits the same forest on them with
    integer labels and checks that every tree is the same. Both steps are cached."""
    key = str(model_path)
    if key in args.pyspatialml_models or key in args.pyspatialml_missing:
        return
    if not args.pyspatialml_python:
        args.pyspatialml_missing[key] = (
            "the pyspatialml runner needs --pyspatialml-python VENV/bin/python "
            "(scripts/install-pyspatialml.sh VENV makes it)"
        )
        return
    steps = [
        stack_command(args, "pyspatialml_trainset.py", size),
        [args.pyspatialml_python, str(HERE / "pyspatialml_baseline.py"), "train"],
    ]
    out = ""
    for cmd in steps:
        if out:
            cmd.append(out)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
            args.pyspatialml_missing[key] = f"pyspatialml model not prepared: {last}"
            print(f"warning: {args.pyspatialml_missing[key]}", file=sys.stderr)
            return
        out = proc.stdout.strip().splitlines()[-1]
    args.pyspatialml_models[key] = Path(out)
