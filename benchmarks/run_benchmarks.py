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
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from datagen import Dataset as Stack  # the record datagen.py writes (run from benchmarks/)

HERE = Path(__file__).resolve().parent
LAYOUTS = ("tiled", "striped")
RUNNERS = ("notebook", "tool1", "toolN", "floor_read", "floor_predict", "pyspatialml")
DEFAULT_RUNNERS = RUNNERS[:5]  # pyspatialml needs its own venv: only when asked for
TOOL_RUNNERS = ("notebook", "tool1", "toolN", "pyspatialml")  # they write classified rasters
MB = 1024 * 1024
# Measured peak of notebook_baseline.py is about this many times the raw float32 stack
# (DataFrame, NaN mask, filled copy of the valid rows, GDAL cache); used to skip sizes that
# cannot fit in RAM instead of swapping or being OOM-killed.
NOTEBOOK_RAM_FACTOR = 3.0
# Other processes using more than this many cores on average during a run: flag it.
CONTENTION = 0.25


# --------------------------------------------------------------------------- data


def _stack_command(args: argparse.Namespace, script: str, size: int) -> list[str]:
    """A script of this folder, run by the benchmark's Python on one generated stack."""
    return [
        args.python,
        str(HERE / script),
        *("--data", str(args.data), "--size", str(size), "--layers", str(args.layers)),
    ]


def ensure_stacks(args: argparse.Namespace, size: int) -> dict[str, Stack]:
    """Generate (or reuse) the stacks in a child process: the harness stays small, so
    that wait4's ru_maxrss of the runners (which starts at the parent's RSS) is theirs."""
    proc = subprocess.run(
        [*_stack_command(args, "datagen.py", size), "--layouts", *args.layouts],
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


# --------------------------------------------------------------------------- measuring


@dataclass
class Measurement:
    returncode: int | None
    wall_s: float
    tree_peak_rss_mb: float | None  # psutil: max over samples of the tree's summed RSS
    max_process_rss_mb: float  # wait4(): max RSS of the process or any waited-for child
    max_processes: int
    cpu_s: float
    samples: int
    timed_out: bool
    other_cpu_s: float | None  # CPU time the rest of the machine used meanwhile (contention)
    leftover_processes: list[str]  # descendants still alive 1 s after the main one exited

    @property
    def peak_rss_mb(self) -> float:
        return max(self.tree_peak_rss_mb or 0.0, self.max_process_rss_mb)


def _sample_tree(proc: Any, cpu: dict[int, float]) -> tuple[int, int]:
    """(summed RSS in bytes, process count) of ``proc`` and its descendants; records each
    process's CPU seconds in ``cpu`` (workers that exit unreaped escape wait4's rusage)."""
    import psutil

    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0, 0
    total = 0
    count = 0
    for p in procs:
        try:
            with p.oneshot():
                total += p.memory_info().rss
                t = p.cpu_times()
            cpu[p.pid] = t.user + t.system
            count += 1
        except psutil.Error:
            pass
    return total, count


def _busy_cpu_s() -> float | None:
    """Machine-wide non-idle CPU seconds so far (None without psutil)."""
    try:
        import psutil
    except ImportError:
        return None
    t = psutil.cpu_times()  # guest time is already in user; steal is not this VM's work
    return float(t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0))


def measure(
    cmd: list[str], *, log_dir: Path, timeout: float, poll: float, env: dict[str, str] | None = None
) -> Measurement:
    """Run ``cmd``; time it and track the peak memory of its process tree."""
    try:
        import psutil
    except ImportError:
        psutil = None
        print(
            "warning: psutil is not installed (pip install psutil): peak memory will be the "
            "largest single process (wait4) only, not the tree's sum",
            file=sys.stderr,
        )
    log_dir.mkdir(parents=True, exist_ok=True)
    peak = 0
    cpu: dict[int, float] = {}
    max_procs = 1
    samples = 0
    timed_out = False
    with open(log_dir / "stdout.txt", "wb") as out, open(log_dir / "stderr.txt", "wb") as err:
        cpu0 = _busy_cpu_s()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, start_new_session=True)
        ps_proc = None
        if psutil is not None:
            with contextlib.suppress(psutil.Error):
                ps_proc = psutil.Process(proc.pid)
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if ps_proc is not None:
                    rss, count = _sample_tree(ps_proc, cpu)
                    peak = max(peak, rss)
                    max_procs = max(max_procs, count)
                    samples += 1
                if time.perf_counter() - t0 > timeout and not timed_out:
                    timed_out = True
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, 9)
                time.sleep(poll)
        except BaseException:  # Ctrl-C or SIGTERM: do not leave the runner behind
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(proc.pid, 0)
            raise
        wall = time.perf_counter() - t0
        cpu1 = _busy_cpu_s()
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu_s = max(usage.ru_utime + usage.ru_stime, sum(cpu.values()))
    leftovers = _leftovers(cpu, proc.pid) if ps_proc is not None else []
    return Measurement(
        returncode=proc.returncode,
        wall_s=round(wall, 3),
        tree_peak_rss_mb=round(peak / MB, 1) if ps_proc is not None else None,
        max_process_rss_mb=round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
        max_processes=max_procs,
        cpu_s=round(cpu_s, 2),
        samples=samples,
        timed_out=timed_out,
        other_cpu_s=(
            round(max(cpu1 - cpu0 - cpu_s, 0.0), 2)
            if cpu0 is not None and cpu1 is not None
            else None
        ),
        leftover_processes=leftovers,
    )


def _leftovers(seen: dict[int, float], main_pid: int, grace: float = 1.0) -> list[str]:
    """Descendants still running ``grace`` seconds after the main process exited."""
    import psutil

    others = [pid for pid in seen if pid != main_pid]
    if not others:
        return []
    time.sleep(grace)
    alive = []
    for pid in others:
        try:
            p = psutil.Process(pid)
            if p.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{pid}: {' '.join(p.cmdline())[:120]}")
        except psutil.Error:
            pass
    return alive


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


def _tail(path: Path, limit: int = 1500) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-limit:].strip()


def _tool_detail(report_path: Path) -> dict[str, Any]:
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError) as exc:
        return {"report_error": f"{type(exc).__name__}: {exc}"}
    keys = (
        "version",
        "timing",
        "peak_memory_mb",
        "peak_memory_worker_mb",
        "windows",
        "workers",
        "engine",
        "memory_mb",
        "gdal_cache_mb",
        "masked_pixels",
        "stats_cache",
    )
    return {k: report.get(k) for k in keys}


def wait_idle(max_wait: float) -> float:
    """Wait (up to ``max_wait`` s) until other processes use < CONTENTION cores; return
    the seconds waited."""
    if max_wait <= 0 or _busy_cpu_s() is None:
        return 0.0
    t0 = time.perf_counter()
    warned = False
    while True:
        b0 = _busy_cpu_s()
        time.sleep(1.0)
        busy = (_busy_cpu_s() or 0.0) - (b0 or 0.0)
        waited = time.perf_counter() - t0
        if busy < CONTENTION or waited >= max_wait:
            if warned:
                print(f"(waited {waited:.0f} s for the machine to go idle)", end=" ", flush=True)
            return round(waited, 1)
        if not warned:
            print(f"(machine busy: {busy:.1f} cores in use; waiting)", end=" ", flush=True)
            warned = True


def _own_rss_mb() -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    return round(psutil.Process().memory_info().rss / MB, 1)


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
    cmd = command_for(runner, args, config, result_path)
    base.command = cmd
    waited = wait_idle(args.wait_idle)
    load_avg = [round(x, 2) for x in os.getloadavg()]
    harness_rss = _own_rss_mb()
    m = measure(cmd, log_dir=run_dir, timeout=args.timeout, poll=args.poll)
    res = RunResult(
        ds.size,
        ds.layers,
        ds.layout,
        ds.pixels,
        runner,
        repeat,
        "timeout" if m.timed_out else ("ok" if m.returncode == 0 else "failed"),
        **{k: v for k, v in asdict(m).items() if k not in ("timed_out",)},
        command=cmd,
        harness_rss_mb=harness_rss,
        waited_idle_s=waited,
        load_avg=load_avg,
    )
    res.peak_rss_mb = m.peak_rss_mb
    if res.status != "ok":
        res.error = _tail(run_dir / "stderr.txt") or f"exit code {m.returncode}"
        return res
    if runner in ("tool1", "toolN"):
        res.detail = _tool_detail(output.with_suffix(".report.json"))
        res.timed_s = (
            (res.detail.get("timing") or {}).get("total_seconds")
            if isinstance(res.detail.get("timing"), dict)
            else None
        )
    else:
        try:
            res.detail = json.loads(result_path.read_text())
        except (OSError, ValueError) as exc:
            res.detail = {"result_error": str(exc)}
        if runner == "notebook":
            res.timed_s = (res.detail.get("timing") or {}).get("total")
        else:
            res.timed_s = res.detail.get("timed_seconds")
    return res


def compare_outputs(run_root: Path, runners: list[str]) -> list[dict[str, Any]]:
    """Pixel-by-pixel agreement of the classified rasters the runners wrote."""
    import numpy as np
    import rasterio

    rasters = {}
    for r in runners:
        path = run_root / r / "prediction.tif"
        if path.exists():
            with rasterio.open(path) as src:
                rasters[r] = (src.read(1), src.profile)
    out = []
    names = [r for r in TOOL_RUNNERS if r in rasters]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            (xa, pa), (xb, pb) = rasters[a], rasters[b]
            entry: dict[str, Any] = {"a": a, "b": b}
            if xa.shape != xb.shape:
                entry["error"] = f"shape {xa.shape} vs {xb.shape}"
            else:
                diff = int(np.count_nonzero(xa != xb))
                entry.update(pixels=int(xa.size), differing=diff, identical=diff == 0)
            for key in ("dtype", "nodata", "crs", "transform"):
                if pa.get(key) != pb.get(key):
                    entry.setdefault("profile_differs", {})[key] = [
                        str(pa.get(key)),
                        str(pb.get(key)),
                    ]
            out.append(entry)
    return out


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
        _stack_command(args, "pyspatialml_trainset.py", size),
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


def warm_cache(ds: Stack) -> None:
    """Read the files once so every runner starts from the same (warm) page cache."""
    for p in sorted(ds.layer_dir.iterdir()):
        with open(p, "rb") as fh:
            while fh.read(16 * MB):
                pass


# --------------------------------------------------------------------------- summary


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info(python: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "python_executable": python,
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        import psutil

        info["physical_cores"] = psutil.cpu_count(logical=False)
        info["ram_gb"] = round(psutil.virtual_memory().total / 1024**3, 1)
    except ImportError:
        info["ram_gb"] = round(
            os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1
        )
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    code = (
        "import json, numpy, pandas, rasterio, sklearn, joblib\n"
        "v = {'numpy': numpy.__version__, 'pandas': pandas.__version__,"
        " 'rasterio': rasterio.__version__, 'gdal': rasterio.__gdal_version__,"
        " 'scikit-learn': sklearn.__version__, 'joblib': joblib.__version__}\n"
        "try:\n import windowed_classify as w; v['windowed_classify'] = getattr("
        "w, '__version__', '?'); v['windowed_classify_file'] = w.__file__\n"
        "except Exception as e: v['windowed_classify'] = None\n"
        "print(json.dumps(v))"
    )
    try:
        info["versions"] = json.loads(
            subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout
        )
    except (subprocess.CalledProcessError, ValueError) as exc:
        info["versions_error"] = str(exc)
    info["versions_harness"] = {d: _version(d) for d in ("psutil", "matplotlib", "pyyaml")}
    try:
        info["git_commit"] = subprocess.run(
            ["git", "-C", str(HERE.parent), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        # uncommitted edits of the package the runs imported: they measured those too
        imported = str(info.get("versions", {}).get("windowed_classify_file") or "")
        info["git_dirty_package"] = subprocess.run(
            ["git", "-C", str(HERE.parent), "status", "--porcelain", "--", "windowed_classify"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        if not imported.startswith(str(HERE.parent) + os.sep):
            info["git_dirty_package"] = f"n/a: windowed_classify imported from {imported}"
    except (subprocess.CalledProcessError, FileNotFoundError):
        info["git_commit"] = None
    return info


def _agg(runs: list[RunResult]) -> dict[tuple[int, str, str], dict[str, Any]]:
    """Per (size, layout, runner) over repeats: the fastest run's wall, CPU and other CPU;
    the smallest timed s; the largest peaks."""
    groups: dict[tuple[int, str, str], list[RunResult]] = {}
    for r in runs:
        groups.setdefault((r.size, r.layout, r.runner), []).append(r)
    out = {}
    for key, rs in groups.items():
        ok = [r for r in rs if r.status == "ok"]
        if not ok:
            out[key] = {"status": rs[-1].status, "error": rs[-1].error, "pixels": rs[-1].pixels}
            continue
        best = min(ok, key=lambda r: r.wall_s if r.wall_s is not None else float("inf"))
        out[key] = {
            "status": "ok",
            "pixels": best.pixels,
            "runs": len(ok),
            "wall_s": best.wall_s,
            "timed_s": min((r.timed_s for r in ok if r.timed_s is not None), default=None),
            "peak_rss_mb": max(r.peak_rss_mb for r in ok if r.peak_rss_mb is not None),
            "max_process_rss_mb": max(r.max_process_rss_mb or 0 for r in ok),
            "max_processes": max(r.max_processes or 0 for r in ok),
            "cpu_s": best.cpu_s,
            "other_cpu_s": best.other_cpu_s,
        }
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


def _pairs(runs: list[RunResult], size: int, layout: str) -> list[dict[str, Any]]:
    """pyspatialml's wall time over the tool's in the same repeat (the runners of one
    repeat run back to back, so each pair saw about the same machine)."""
    by: dict[tuple[int, str], RunResult] = {
        (r.repeat, r.runner): r
        for r in runs
        if r.size == size and r.layout == layout and r.status == "ok"
    }
    out = []
    for repeat in sorted({k[0] for k in by if k[1] == "pyspatialml"}):
        p = by[(repeat, "pyspatialml")]
        entry: dict[str, Any] = {"repeat": repeat, "pyspatialml_wall_s": p.wall_s}
        for tool in ("toolN", "tool1"):
            t = by.get((repeat, tool))
            entry[f"{tool}_wall_s"] = t.wall_s if t else None
            entry[f"pyspatialml_over_{tool}"] = _ratio(p.wall_s, t.wall_s if t else None)
        out.append(entry)
    return out


def summarize(runs: list[RunResult]) -> dict[str, Any]:
    agg = _agg(runs)
    sizes = sorted({k[0] for k in agg})
    layouts = list(dict.fromkeys(k[1] for k in agg))  # order of appearance
    ratios = []
    for size in sizes:
        for layout in layouts:

            def get(runner: str, key: str, size: int = size, layout: str = layout) -> Any:
                row = agg.get((size, layout, runner))
                return row.get(key) if row and row["status"] == "ok" else None

            read, pred = get("floor_read", "timed_s"), get("floor_predict", "timed_s")
            floor = round(2 * read + pred, 3) if read is not None and pred is not None else None
            ratios.append(
                {
                    "size": size,
                    "layout": layout,
                    "floor_s": floor,
                    "tool1_over_floor": _ratio(get("tool1", "wall_s"), floor),
                    "toolN_over_tool1": _ratio(get("toolN", "wall_s"), get("tool1", "wall_s")),
                    "notebook_over_tool1": _ratio(
                        get("notebook", "wall_s"), get("tool1", "wall_s")
                    ),
                    "tool1_peak_over_notebook_peak": _ratio(
                        get("tool1", "peak_rss_mb"), get("notebook", "peak_rss_mb")
                    ),
                    "toolN_peak_over_notebook_peak": _ratio(
                        get("toolN", "peak_rss_mb"), get("notebook", "peak_rss_mb")
                    ),
                    "pyspatialml_over_toolN": _ratio(
                        get("pyspatialml", "wall_s"), get("toolN", "wall_s")
                    ),
                    "pyspatialml_over_tool1": _ratio(
                        get("pyspatialml", "wall_s"), get("tool1", "wall_s")
                    ),
                    "pyspatialml_pairs": _pairs(runs, size, layout),
                }
            )
    flatness = []
    runners = [r for r in RUNNERS if any(k[2] == r for k in agg)]
    for layout in layouts:
        for runner in runners:
            ok = sorted(
                (k[0], v)
                for k, v in agg.items()
                if k[1] == layout and k[2] == runner and v["status"] == "ok"
            )
            if len(ok) < 2:
                continue
            (s0, v0), (s1, v1) = ok[0], ok[-1]
            flatness.append(
                {
                    "layout": layout,
                    "runner": runner,
                    "smallest": s0,
                    "largest": s1,
                    "pixel_ratio": round(v1["pixels"] / v0["pixels"], 2),
                    "peak_ratio": _ratio(v1["peak_rss_mb"], v0["peak_rss_mb"]),
                }
            )
    table = [
        {"size": k[0], "layout": k[1], "runner": k[2], **v}
        for k, v in sorted(
            agg.items(), key=lambda kv: (kv[0][0], layouts.index(kv[0][1]), RUNNERS.index(kv[0][2]))
        )
    ]
    return {"table": table, "ratios": ratios, "flatness": flatness}


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _last(row: dict[str, Any], limit: int = 70) -> str:
    lines = (row.get("error") or "").strip().splitlines()
    text = lines[-1] if lines else ""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def table_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = [
        "size",
        "layout",
        "runner",
        "wall s",
        "timed s",
        "peak RSS MB",
        "max 1-proc MB",
        "procs",
        "CPU s",
        "other CPU s",
        "status",
    ]
    rows = []
    for r in summary["table"]:
        rows.append(
            [
                f"{r['size']}^2",
                r["layout"],
                r["runner"],
                _fmt(r.get("wall_s")),
                _fmt(r.get("timed_s")),
                _fmt(r.get("peak_rss_mb"), 0),
                _fmt(r.get("max_process_rss_mb"), 0),
                _fmt(r.get("max_processes")),
                _fmt(r.get("cpu_s"), 1),
                _fmt(r.get("other_cpu_s"), 1),
                r["status"] if r["status"] == "ok" else f"{r['status']}: {_last(r)}",
            ]
        )
    return head, rows


def contended(summary: dict[str, Any]) -> list[str]:
    """Rows during which the rest of the machine used > CONTENTION cores on average."""
    rows = [
        (r["other_cpu_s"] / r["wall_s"], f"{r['size']}^2 {r['layout']} {r['runner']}")
        for r in summary["table"]
        if r["status"] == "ok" and r.get("other_cpu_s") is not None and r["wall_s"]
    ]
    return [name for share, name in sorted(rows, reverse=True) if share > CONTENTION]


def print_table(summary: dict[str, Any]) -> None:
    head, rows = table_rows(summary)
    widths = [
        max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)
    ]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    for r in summary["ratios"]:
        print(
            f"{r['size']}^2 {r['layout']}: floor {_fmt(r['floor_s'])} s, "
            f"tool1/floor {_fmt(r['tool1_over_floor'])}, "
            f"toolN/tool1 {_fmt(r['toolN_over_tool1'])}, "
            f"tool1 peak/notebook peak {_fmt(r['tool1_peak_over_notebook_peak'], 3)}"
        )
        if r.get("pyspatialml_pairs"):
            pairs = ", ".join(
                f"{_fmt(x['pyspatialml_over_toolN'])}" for x in r["pyspatialml_pairs"]
            )
            print(
                f"{r['size']}^2 {r['layout']}: pyspatialml/toolN "
                f"{_fmt(r['pyspatialml_over_toolN'])} (fastest of each), per repeat {pairs}; "
                f"pyspatialml/tool1 {_fmt(r['pyspatialml_over_tool1'])}"
            )
    busy = contended(summary)
    if busy:
        print(
            f"warning: the machine was busy (other CPU > {CONTENTION:.0%} of a core) during "
            f"{len(busy)} measurement(s), e.g. {', '.join(busy[:3])}: times are unreliable"
        )


def _md_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_markdown(path: Path, doc: dict[str, Any]) -> None:
    summary = doc["summary"]
    m = doc["machine"]
    v = m.get("versions", {})
    parts = [
        "# windowed_classify benchmark",
        "",
        f"{doc['finished']} on {m.get('cpu_count')} CPUs ({m.get('cpu_model', '?')}), "
        f"{m.get('ram_gb')} GB RAM, Python {m.get('python')}, numpy {v.get('numpy')}, "
        f"pandas {v.get('pandas')}, rasterio {v.get('rasterio')} (GDAL {v.get('gdal')}), "
        f"scikit-learn {v.get('scikit-learn')}, windowed_classify {v.get('windowed_classify')}. "
        f"{doc['args']['layers']} float32 LZW layers per stack; toolN = "
        f"{doc['args']['workers']} workers; processing.memory_mb = "
        f"{doc['args']['memory_mb'] or 'tool default'}.",
        "",
        "wall s: process wall time (start-up and imports included). timed s: the floors' "
        "timed section (what the floor ratio uses), the tool's own report total, the "
        "notebook's own total. peak RSS MB: peak summed RSS of the process tree (psutil, "
        f"every {doc['args']['poll']} s), never below max 1-proc MB (wait4 ru_maxrss).",
        "",
        _md_table(*table_rows(summary)),
        "",
        "## Ratios (same run)",
        "",
        "floor = 2 x floor_read + floor_predict (the tool reads the stack twice and "
        "predicts once). Tool and notebook use wall s; floors use timed s.",
        "",
    ]
    head = [
        "size",
        "layout",
        "floor s",
        "tool1/floor",
        "toolN/tool1",
        "notebook/tool1",
        "tool1 peak/notebook peak",
        "toolN peak/notebook peak",
    ]
    rows = [
        [
            f"{r['size']}^2",
            r["layout"],
            _fmt(r["floor_s"]),
            _fmt(r["tool1_over_floor"]),
            _fmt(r["toolN_over_tool1"]),
            _fmt(r["notebook_over_tool1"]),
            _fmt(r["tool1_peak_over_notebook_peak"], 3),
            _fmt(r["toolN_peak_over_notebook_peak"], 3),
        ]
        for r in summary["ratios"]
    ]
    parts += [
        _md_table(head, rows),
        "",
        "## Memory flatness",
        "",
        "peak RSS at the largest size / peak RSS at the smallest size (1.0 = flat).",
        "",
    ]
    head = ["layout", "runner", "sizes", "pixel ratio", "peak ratio"]
    rows = [
        [
            f["layout"],
            f["runner"],
            f"{f['smallest']}^2 -> {f['largest']}^2",
            _fmt(f["pixel_ratio"]),
            _fmt(f["peak_ratio"], 3),
        ]
        for f in summary["flatness"]
    ]
    parts += [_md_table(head, rows), ""]
    parts += _pyspatialml_section(doc)
    busy = contended(summary)
    if busy:
        parts[parts.index("## Ratios (same run)") : parts.index("## Ratios (same run)")] = [
            f"**Warning: the machine was busy** during {len(busy)} of these measurements "
            f"(other processes used more than {CONTENTION:.0%} of a core on average while "
            "they ran; see the other CPU s column): their times are not trustworthy. "
            f"Busiest: {', '.join(busy[:6])}.",
            "",
        ]
    if doc.get("agreement"):
        parts += [
            "## Output agreement",
            "",
            "Pixels that differ between the classified rasters of two runners.",
            "",
        ]
        head = ["size", "layout", "a", "b", "differing pixels", "note"]
        rows = [
            [
                f"{a['size']}^2",
                a["layout"],
                a["a"],
                a["b"],
                _fmt(a.get("differing")),
                a.get("error")
                or (json.dumps(a["profile_differs"]) if "profile_differs" in a else ""),
            ]
            for a in doc["agreement"]
        ]
        parts += [_md_table(head, rows), ""]
    path.write_text("\n".join(parts))


def _pyspatialml_section(doc: dict[str, Any]) -> list[str]:
    """Ratios to pyspatialml's Raster.predict and every run's machine load."""
    ratios = [r for r in doc["summary"]["ratios"] if r.get("pyspatialml_pairs")]
    if not ratios:
        return []
    pysp = [r for r in doc["runs"] if r["runner"] == "pyspatialml" and r["status"] == "ok"]
    v = (pysp[0].get("detail") or {}).get("versions", {}) if pysp else {}
    parts = [
        "## pyspatialml (same run)",
        "",
        f"pyspatialml {v.get('pyspatialml')} `Raster([files]).predict(model, file_path, "
        f"dtype='uint8', nodata=255, compress='lzw')` in its own venv (numpy {v.get('numpy')}, "
        f"scikit-learn {v.get('scikit-learn')}, rasterio {v.get('rasterio')}, GDAL "
        f"{v.get('gdal')}), with the same forest trained on integer labels (every tree "
        "checked equal to model.pkl's). Ratios of wall times; 'fastest' uses each runner's "
        "fastest run, 'repeat k' the runs of one repeat, which ran back to back.",
        "",
    ]
    head = ["size", "layout", "pairing", "pyspatialml s", "toolN s", "tool1 s"]
    head += ["pyspatialml/toolN", "pyspatialml/tool1"]
    rows = []
    for r in ratios:
        agg = {
            t["runner"]: t
            for t in doc["summary"]["table"]
            if t["size"] == r["size"] and t["layout"] == r["layout"]
        }
        rows.append(
            [
                f"{r['size']}^2",
                r["layout"],
                "fastest",
                *(_fmt(agg.get(k, {}).get("wall_s")) for k in ("pyspatialml", "toolN", "tool1")),
                _fmt(r["pyspatialml_over_toolN"]),
                _fmt(r["pyspatialml_over_tool1"]),
            ]
        )
        for x in r["pyspatialml_pairs"] if len(r["pyspatialml_pairs"]) > 1 else []:
            rows.append(
                [
                    f"{r['size']}^2",
                    r["layout"],
                    f"repeat {x['repeat'] + 1}",
                    _fmt(x["pyspatialml_wall_s"]),
                    _fmt(x["toolN_wall_s"]),
                    _fmt(x["tool1_wall_s"]),
                    _fmt(x["pyspatialml_over_toolN"]),
                    _fmt(x["pyspatialml_over_tool1"]),
                ]
            )
    parts += [_md_table(head, rows), ""]
    parts += [
        "Machine load of every run: load average (1/5/15 min) just before it started, and "
        "the CPU the rest of the machine used while it ran.",
        "",
    ]
    head = ["size", "layout", "runner", "repeat", "wall s", "peak RSS MB", "load avg"]
    head += ["other CPU s", "waited idle s"]
    rows = [
        [
            f"{r['size']}^2",
            r["layout"],
            r["runner"],
            str(r["repeat"] + 1),
            _fmt(r.get("wall_s")),
            _fmt(r.get("peak_rss_mb"), 0),
            " / ".join(f"{x:.2f}" for x in r.get("load_avg") or []) or "-",
            _fmt(r.get("other_cpu_s"), 1),
            _fmt(r.get("waited_idle_s"), 0),
        ]
        for r in doc["runs"]
        if r["status"] == "ok"
    ]
    return [*parts, _md_table(head, rows), ""]


def write_plot(path: Path, summary: dict[str, Any], layers: int) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter
    except ImportError:
        print(
            f"matplotlib is not installed, so {path.name} was not written: "
            "pip install matplotlib (or pip install -e '.[bench]')",
            file=sys.stderr,
        )
        return
    fig, ax = plt.subplots(figsize=(7.5, 5))
    styles = {"tiled": "-", "striped": "--"}
    colors = dict(zip(RUNNERS, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    series: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for r in summary["table"]:
        if r["status"] == "ok":
            series.setdefault((r["runner"], r["layout"]), []).append(
                (r["pixels"], r["peak_rss_mb"])
            )
    for (runner, layout), pts in sorted(series.items(), key=lambda kv: RUNNERS.index(kv[0][0])):
        pts.sort()
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            styles.get(layout, ":"),
            marker="o",
            color=colors.get(runner),
            label=f"{runner} ({layout})",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1e6:g} M"))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda x, _: ""))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
    ax.set_xlabel(f"pixels per layer ({layers} layers)")
    ax.set_ylabel("peak RSS of the process tree (MB)")
    ax.set_title("Peak memory vs raster size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- main


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


def tool_available(python: str) -> str | None:
    """None when ``python -m windowed_classify`` can be imported, else the reason."""
    code = (
        "import importlib.util, windowed_classify\n"
        "assert importlib.util.find_spec('windowed_classify.__main__'), 'no __main__'"
    )
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True)
    if proc.returncode == 0:
        return None
    last = (proc.stderr.strip().splitlines() or ["?"])[-1]
    return f"windowed_classify is not importable with {python}: {last}"


def render_only(out: Path) -> int:
    doc = json.loads((out / "benchmark.json").read_text())
    runs = [RunResult(**r) for r in doc["runs"]]
    doc["summary"] = summarize(runs)
    write_markdown(out / "benchmark.md", doc)
    write_plot(out / "memory.png", doc["summary"], int(doc["args"]["layers"]))
    print_table(doc["summary"])
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render_only:
        return render_only(args.out)
    # SIGTERM -> SystemExit, so measure() kills the runner it is watching before exiting.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.out.mkdir(parents=True, exist_ok=True)
    needs_tool = any(r in ("tool1", "toolN") for r in args.runs)
    args.tool_missing = tool_available(args.python) if needs_tool else None
    if args.tool_missing:
        print(f"warning: {args.tool_missing}; tool runs are skipped", file=sys.stderr)
    args.pyspatialml_models, args.pyspatialml_missing = {}, {}  # model.pkl -> twin / reason
    doc: dict[str, Any] = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "finished": None,
        "machine": machine_info(args.python),
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
        doc["summary"] = summarize(runs)
        tmp = args.out / "benchmark.json.tmp"
        tmp.write_text(json.dumps(doc, indent=1, default=str))
        os.replace(tmp, args.out / "benchmark.json")
        write_markdown(args.out / "benchmark.md", doc)

    for size in sorted(args.sizes):
        datasets = ensure_stacks(args, size)
        if "pyspatialml" in args.runs:
            for ds in datasets.values():
                prepare_pyspatialml(args, size, ds.model_path)
        for layout, ds in datasets.items():
            model_meta = json.loads((ds.root / "model.json").read_text())
            doc["datasets"][ds.key] = {**ds.manifest, "model": model_meta}
            if not args.no_warm:
                warm_cache(ds)
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
                    if res.status == "ok":
                        print(f"{res.wall_s:.2f} s, peak {res.peak_rss_mb:.0f} MB")
                        if res.leftover_processes:
                            print(
                                f"  warning: {len(res.leftover_processes)} child process(es) "
                                f"still running after exit: {res.leftover_processes}"
                            )
                    else:
                        print(f"{res.status}: {(res.error or '').splitlines()[-1:]}")
                    save()
            for entry in compare_outputs(run_root, args.runs):
                doc["agreement"].append({"size": size, "layout": layout, **entry})
            save()

    print()
    print_table(summarize(runs))
    write_plot(args.out / "memory.png", summarize(runs), args.layers)
    print(f"\nwrote {args.out / 'benchmark.json'}, benchmark.md, memory.png")
    return 0 if all(r.status in ("ok", "skipped") for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
