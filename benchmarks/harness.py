"""The benchmark harness: what every script of this folder shares.

Measuring one case as its own process (:func:`run_case`):

* the command runs in its own session (process group), so a timeout or Ctrl-C kills the
  whole tree;
* wall time is the process's, start-up and imports included (what a user sees);
* peak memory is the largest summed RSS of the process tree, polled with psutil, and never
  less than ``wait4()``'s ``ru_maxrss`` (the largest single process, exact);
* the load average before the run and the CPU the rest of the machine used during it are
  recorded, so a run that competed with something else can be flagged;
* an optional memory limit (``RLIMIT_AS`` per process plus a watchdog on the tree's summed
  RSS) lets a run that would exhaust the machine fail the way it would on a smaller one.

The scripts' skeleton: their shared options (:func:`add_options`), the generated stacks
(:func:`ensure_stacks`) and the configs written for them (:func:`tool_config`), the rounds
that alternate the cases and the result document rewritten after every run
(:class:`Bench`), the machine and versions (:func:`machine_info`), atomic JSON, markdown
and printed tables, and the pixel-by-pixel comparison of classified rasters. Plots are in
plots.py.

The harness itself must stay small: ``ru_maxrss`` of a child starts at its parent's RSS
(Linux carries the high-water mark across fork+exec), so data generation and anything
heavy (numpy included) runs in child processes, never here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MB = 1024 * 1024
# Other processes using more than this many cores on average during a run: flag it.
CONTENTION = 0.25
# Messages of a process that ran out of address space under RLIMIT_AS (numpy, pandas,
# C++ libraries, glibc): the run failed for memory, not for a bug.
_MEMORY_ERRORS = (
    "MemoryError",
    "Unable to allocate",
    "std::bad_alloc",
    "Cannot allocate memory",
    "Out of memory",
    "out of memory",
)
# Report keys that are bulky and say nothing about performance; everything else the tool
# writes is kept, so new report keys show up in the benchmark JSON without a change here.
_BULKY_REPORT_KEYS = ("grid", "features", "layers", "outputs", "legend", "ignored_layers")


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
    # Only with the options of measure() that the size suite does not use:
    tree_peak_vms_mb: float | None = None  # virtual size, what RLIMIT_AS limits
    watched_peak_rss_mb: float | None = None  # tree + the `watch` processes, summed
    memory_limit_mb: float | None = None
    killed_over_limit: bool = False  # the watchdog killed the tree (summed RSS > limit)

    @property
    def peak_rss_mb(self) -> float:
        return max(self.tree_peak_rss_mb or 0.0, self.max_process_rss_mb)


def _sample_tree(proc: Any, cpu: dict[int, float]) -> tuple[int, int, int]:
    """(summed RSS, summed VMS in bytes, process count) of ``proc`` and its descendants;
    records each process's CPU seconds in ``cpu`` (workers that exit unreaped escape
    wait4's rusage)."""
    import psutil

    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0, 0, 0
    rss = vms = count = 0
    for p in procs:
        try:
            with p.oneshot():
                mem = p.memory_info()
                t = p.cpu_times()
            rss += mem.rss
            vms += mem.vms
            cpu[p.pid] = t.user + t.system
            count += 1
        except psutil.Error:
            pass
    return rss, vms, count


def busy_cpu_s() -> float | None:
    """Machine-wide non-idle CPU seconds so far (None without psutil)."""
    try:
        import psutil
    except ImportError:
        return None
    t = psutil.cpu_times()  # guest time is already in user; steal is not this VM's work
    return float(t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0))


def _address_space_limit(limit_bytes: int) -> Callable[[], None]:
    """preexec_fn: cap the child's virtual address space (inherited by its children)."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return apply


def measure(
    cmd: list[str],
    *,
    log_dir: Path,
    timeout: float,
    poll: float,
    env: dict[str, str] | None = None,
    memory_limit_mb: float | None = None,
    watch: Sequence[int] = (),
) -> Measurement:
    """Run ``cmd``; time it and track the peak memory of its process tree.

    ``memory_limit_mb``: each process of the tree gets RLIMIT_AS = the limit, and the tree
    is killed when its summed RSS exceeds it (see benchmarks/README.md for why that is a
    faithful stand-in for a machine with that much RAM). ``watch``: pids of processes that
    serve the run from outside its tree (a Dask cluster started beforehand); their RSS is
    added in ``watched_peak_rss_mb`` and their CPU is not counted as contention.
    """
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
    peak = peak_vms = peak_watched = 0
    cpu: dict[int, float] = {}
    watched_cpu: dict[int, float] = {}
    watched_cpu0: dict[int, float] = {}
    watched = [psutil.Process(pid) for pid in watch] if psutil is not None else []
    for w in watched:  # their CPU so far is not this run's
        _sample_tree(w, watched_cpu0)
    max_procs = 1
    samples = 0
    timed_out = killed = False
    limit = int(memory_limit_mb * MB) if memory_limit_mb else None
    preexec = _address_space_limit(limit) if limit else None
    with open(log_dir / "stdout.txt", "wb") as out, open(log_dir / "stderr.txt", "wb") as err:
        cpu0 = busy_cpu_s()
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=err, env=env, start_new_session=True, preexec_fn=preexec
        )
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
                    rss, vms, count = _sample_tree(ps_proc, cpu)
                    peak = max(peak, rss)
                    peak_vms = max(peak_vms, vms)
                    max_procs = max(max_procs, count)
                    samples += 1
                    if watched:
                        extra = sum(_sample_tree(w, watched_cpu)[0] for w in watched)
                        peak_watched = max(peak_watched, rss + extra)
                    if limit and rss > limit and not killed:
                        killed = True  # what the OOM killer of a machine this size would do
                        with contextlib.suppress(ProcessLookupError):
                            os.killpg(proc.pid, 9)
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
        cpu1 = busy_cpu_s()
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu_s = max(usage.ru_utime + usage.ru_stime, sum(cpu.values()))
    served = sum(v - watched_cpu0.get(pid, 0.0) for pid, v in watched_cpu.items())
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
            round(max(cpu1 - cpu0 - cpu_s - served, 0.0), 2)
            if cpu0 is not None and cpu1 is not None
            else None
        ),
        leftover_processes=leftovers,
        tree_peak_vms_mb=round(peak_vms / MB, 1) if ps_proc is not None else None,
        watched_peak_rss_mb=round(peak_watched / MB, 1) if watched else None,
        memory_limit_mb=memory_limit_mb,
        killed_over_limit=killed,
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


def wait_idle(max_wait: float) -> float:
    """Wait (up to ``max_wait`` s) until other processes use < CONTENTION cores; return
    the seconds waited."""
    if max_wait <= 0 or busy_cpu_s() is None:
        return 0.0
    t0 = time.perf_counter()
    warned = False
    while True:
        b0 = busy_cpu_s()
        time.sleep(1.0)
        busy = (busy_cpu_s() or 0.0) - (b0 or 0.0)
        waited = time.perf_counter() - t0
        if busy < CONTENTION or waited >= max_wait:
            if warned:
                print(f"(waited {waited:.0f} s for the machine to go idle)", end=" ", flush=True)
            return round(waited, 1)
        if not warned:
            print(f"(machine busy: {busy:.1f} cores in use; waiting)", end=" ", flush=True)
            warned = True


def own_rss_mb() -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    return round(psutil.Process().memory_info().rss / MB, 1)


def exit_on_sigterm() -> None:
    """SIGTERM -> SystemExit, so measure() kills the runner it is watching before exiting."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


# --------------------------------------------------------------------------- one case


@dataclass
class Case:
    """One measured process: a tool run (read its report) or a script (read its result)."""

    name: str
    command: list[str]
    run_dir: Path
    report: Path | None = None  # the tool's <output stem>.report.json
    result: Path | None = None  # a script's result JSON
    env: dict[str, str] | None = None
    memory_limit_mb: float | None = None
    watch: Sequence[int] = ()
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class CaseResult:
    case: str
    status: str  # ok | failed | timeout | memory_limit | skipped
    params: dict[str, Any] = field(default_factory=dict)
    repeat: int = 0
    wall_s: float | None = None
    timed_s: float | None = None  # a script's timed section; the tool's report total
    peak_rss_mb: float | None = None
    tree_peak_rss_mb: float | None = None
    max_process_rss_mb: float | None = None
    tree_peak_vms_mb: float | None = None
    watched_peak_rss_mb: float | None = None
    max_processes: int | None = None
    cpu_s: float | None = None
    other_cpu_s: float | None = None
    samples: int | None = None
    returncode: int | None = None
    memory_limit_mb: float | None = None
    memory_limit_hit: str | None = None  # how the limit stopped it, when it did
    command: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    leftover_processes: list[str] = field(default_factory=list)
    harness_rss_mb: float | None = None  # max 1-proc MB is never below this (see measure)
    waited_idle_s: float | None = None  # --wait-idle: seconds spent waiting before the run
    load_avg: list[float] | None = None  # 1, 5, 15 min load average just before the run


def tail(path: Path, limit: int = 1500) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-limit:].strip()


def tool_detail(report_path: Path) -> dict[str, Any]:
    """The tool's report without its bulky parts; per-layer medians kept compactly.

    Unknown keys are kept as they are, so a report that gains keys needs no change here."""
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError) as exc:
        return {"report_error": f"{type(exc).__name__}: {exc}"}
    detail = {k: v for k, v in report.items() if k not in _BULKY_REPORT_KEYS}
    layers = report.get("layers")
    if isinstance(layers, dict):
        detail["medians"] = {
            name: info.get("median") if isinstance(info, dict) else None
            for name, info in layers.items()
        }
    return detail


def _timed(detail: dict[str, Any], is_tool: bool) -> float | None:
    """The tool's own total; a script's timed section (floors) or total (notebook)."""
    timing = detail.get("timing")
    if is_tool:
        return timing.get("total_seconds") if isinstance(timing, dict) else None
    if detail.get("timed_seconds") is not None:
        return detail["timed_seconds"]
    return timing.get("total") if isinstance(timing, dict) else None


def _memory_limit_hit(m: Measurement, stderr: str) -> str | None:
    if m.memory_limit_mb is None or m.returncode == 0:
        return None
    if m.killed_over_limit:
        return f"killed by the harness: summed RSS over {m.memory_limit_mb:.0f} MB"
    found = next((s for s in _MEMORY_ERRORS if s in stderr), None)
    if found:
        return f"address space limit (RLIMIT_AS {m.memory_limit_mb:.0f} MB): {found}"
    near = (m.tree_peak_vms_mb or 0) >= 0.9 * m.memory_limit_mb
    if m.returncode is not None and m.returncode < 0 and near:
        # a C library that does not check malloc's result dies of a signal instead
        return (
            f"probably the address space limit (RLIMIT_AS {m.memory_limit_mb:.0f} MB): "
            f"signal {-m.returncode} at {m.tree_peak_vms_mb:.0f} MB of address space"
        )
    return None


def run_case(
    case: Case,
    *,
    timeout: float,
    poll: float,
    wait_idle_s: float = 0.0,
    repeat: int = 0,
) -> CaseResult:
    """Run one prepared case (its config already written) and collect what it reported."""
    waited = wait_idle(wait_idle_s)
    load_avg = [round(x, 2) for x in os.getloadavg()]
    harness_rss = own_rss_mb()
    m = measure(
        case.command,
        log_dir=case.run_dir,
        timeout=timeout,
        poll=poll,
        env=case.env,
        memory_limit_mb=case.memory_limit_mb,
        watch=case.watch,
    )
    stderr = tail(case.run_dir / "stderr.txt")
    hit = _memory_limit_hit(m, tail(case.run_dir / "stderr.txt", 20_000))
    status = "ok" if m.returncode == 0 else "failed"
    if m.timed_out:
        status = "timeout"
    elif hit:
        status = "memory_limit"
    res = CaseResult(
        case=case.name,
        status=status,
        params=dict(case.params),
        repeat=repeat,
        wall_s=m.wall_s,
        peak_rss_mb=m.peak_rss_mb,
        tree_peak_rss_mb=m.tree_peak_rss_mb,
        max_process_rss_mb=m.max_process_rss_mb,
        tree_peak_vms_mb=m.tree_peak_vms_mb,
        watched_peak_rss_mb=m.watched_peak_rss_mb,
        max_processes=m.max_processes,
        cpu_s=m.cpu_s,
        other_cpu_s=m.other_cpu_s,
        samples=m.samples,
        returncode=m.returncode,
        memory_limit_mb=m.memory_limit_mb,
        memory_limit_hit=hit,
        command=case.command,
        leftover_processes=m.leftover_processes,
        harness_rss_mb=harness_rss,
        waited_idle_s=waited,
        load_avg=load_avg,
    )
    if status != "ok":
        res.error = stderr or f"exit code {m.returncode}"
        if hit:
            res.error = f"{hit}\n{res.error}"
        return res
    if case.report is not None:
        res.detail = tool_detail(case.report)
    elif case.result is not None:
        try:
            res.detail = json.loads(case.result.read_text())
        except (OSError, ValueError) as exc:
            res.detail = {"result_error": str(exc)}
    res.timed_s = _timed(res.detail, case.report is not None)
    return res


def print_outcome(res: CaseResult) -> None:
    """One line after the '[...] case ...' prefix the caller printed."""
    if res.status == "ok":
        print(f"{res.wall_s:.2f} s, peak {res.peak_rss_mb:.0f} MB")
        if res.leftover_processes:
            print(
                f"  warning: {len(res.leftover_processes)} child process(es) "
                f"still running after exit: {res.leftover_processes}"
            )
    else:
        peak = f", peak {res.peak_rss_mb:.0f} MB" if res.peak_rss_mb else ""
        print(f"{res.status}{peak}: {(res.error or '').splitlines()[-1:]}")


# --------------------------------------------------------------------------- set-up


def package_env(package_root: Path | None) -> dict[str, str]:
    """The environment for tool runs: ``package_root`` first on PYTHONPATH, so the package
    measured is that checkout's whatever the interpreter has installed (an editable install
    elsewhere, or the pinned AutoML venv's)."""
    env = dict(os.environ)
    if package_root is not None:
        parts = [str(package_root), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(parts)
    return env


def tool_available(python: str, env: dict[str, str] | None = None) -> str | None:
    """None when ``python -m windowed_classify`` can be imported, else the reason."""
    code = (
        "import importlib.util, windowed_classify\n"
        "assert importlib.util.find_spec('windowed_classify.__main__'), 'no __main__'"
    )
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, env=env)
    if proc.returncode == 0:
        return None
    last = (proc.stderr.strip().splitlines() or ["?"])[-1]
    return f"windowed_classify is not importable with {python}: {last}"


def warm_cache(paths: Iterable[Path]) -> None:
    """Read the files once so every runner starts from the same (warm) page cache."""
    for p in sorted(paths):
        with open(p, "rb") as fh:
            while fh.read(16 * MB):
                pass


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info(
    python: str, env: dict[str, str] | None = None, extra_dists: Sequence[str] = ()
) -> dict[str, Any]:
    """CPU, RAM and the versions the runs use (asked of ``python``, with ``env``)."""
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
        "import json, sys, numpy, pandas, rasterio, sklearn, joblib\n"
        "from importlib import metadata\n"
        "v = {'numpy': numpy.__version__, 'pandas': pandas.__version__,"
        " 'rasterio': rasterio.__version__, 'gdal': rasterio.__gdal_version__,"
        " 'scikit-learn': sklearn.__version__, 'joblib': joblib.__version__}\n"
        "for d in sys.argv[1:]:\n"
        " try: v[d] = metadata.version(d)\n"
        " except metadata.PackageNotFoundError: v[d] = None\n"
        "try:\n import windowed_classify as w; v['windowed_classify'] = getattr("
        "w, '__version__', '?'); v['windowed_classify_file'] = w.__file__\n"
        "except Exception as e: v['windowed_classify'] = None\n"
        "print(json.dumps(v))"
    )
    try:
        info["versions"] = json.loads(
            subprocess.run(
                [python, "-c", code, *extra_dists],
                capture_output=True,
                text=True,
                check=True,
                env=env,
                cwd=str(HERE),  # not the caller's folder: '' on sys.path could shadow it
            ).stdout
        )
    except (subprocess.CalledProcessError, ValueError) as exc:
        info["versions_error"] = str(exc)
    info["versions_harness"] = {d: _version(d) for d in ("psutil", "matplotlib", "pyyaml")}
    try:
        info["git_commit"] = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        # uncommitted edits of the package the runs imported: they measured those too
        imported = str(info.get("versions", {}).get("windowed_classify_file") or "")
        info["git_dirty_package"] = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "windowed_classify"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        if not imported.startswith(str(REPO) + os.sep):
            info["git_dirty_package"] = f"n/a: windowed_classify imported from {imported}"
    except (subprocess.CalledProcessError, FileNotFoundError):
        info["git_commit"] = None
    return info


# --------------------------------------------------------------------------- outputs


def compare_rasters(rasters: dict[str, Path]) -> list[dict[str, Any]]:
    """Pixel-by-pixel agreement of every pair of classified rasters (in the given order;
    missing files are left out)."""
    import numpy as np
    import rasterio

    loaded = {}
    for name, path in rasters.items():
        if path.exists():
            with rasterio.open(path) as src:
                loaded[name] = (src.read(1), src.profile)
    out = []
    names = list(loaded)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            (xa, pa), (xb, pb) = loaded[a], loaded[b]
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


def write_json(path: Path, doc: Any) -> None:
    """Atomically: a reader (or a crash) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    os.replace(tmp, path)


def fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


def last_line(text: str | None, limit: int = 70) -> str:
    lines = (text or "").strip().splitlines()
    line = lines[-1] if lines else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def md_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def print_table(head: list[str], rows: list[list[str]]) -> None:
    widths = [
        max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)
    ]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def contended_share(other_cpu_s: float | None, wall_s: float | None) -> float | None:
    """Cores the rest of the machine used on average during a run."""
    if other_cpu_s is None or not wall_s:
        return None
    return other_cpu_s / wall_s


# --------------------------------------------------------------------------- the scripts


@dataclass(frozen=True)
class Stack:
    """One generated stack (datagen.py or seedgen.py) and its model."""

    size: int
    layers: int
    layout: str
    root: Path
    layer_dir: Path
    model_path: Path
    manifest: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.size}x{self.layers}_{self.layout}"

    @property
    def pixels(self) -> int:
        return self.size * self.size


def ensure_stacks(
    python: str, data: Path, size: int, layers: int, layouts: Sequence[str]
) -> dict[str, Stack]:
    """The size suite's stacks by layout, generated (or reused) by datagen.py in a child
    process: the harness stays small, so that wait4's ru_maxrss of the runs (which starts at
    the parent's RSS) is theirs."""
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


# The classified output every classification case writes (the tool's defaults, written out
# because notebook_baseline.py reads them from the config).
CLASS_OUTPUT = {"dtype": "uint8", "nodata": 255, "compress": "lzw"}


def tool_config(
    layer_dir: Path | str,
    nodata_value: float,
    model: dict[str, Any],
    output: dict[str, Any],
    *,
    threshold: int = 0,
    processing: dict[str, Any] | None = None,
    **sections: Any,
) -> dict[str, Any]:
    """A run's config over one generated stack; the statistics cache is off unless
    ``processing`` turns it on, so every run computes pass 1."""
    return {
        "rasters": {"folder": str(layer_dir), "extensions": [".tif"]},
        "nodata": {"values": [nodata_value], "use_file_nodata": True, "threshold": threshold},
        "model": model,
        "output": {**output, "overwrite": True},
        "processing": {"stats_cache": False, **(processing or {})},
        **sections,
    }


def write_yaml(path: Path, doc: dict[str, Any]) -> None:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def read_yaml(path: Path) -> Any:
    import yaml

    return yaml.safe_load(path.read_text())


def add_options(
    p: argparse.ArgumentParser,
    *,
    out: Path,
    workers: int,
    repeat: int,
    timeout: float,
    data: Path | None = HERE / "data",
    package_root: bool = True,
    workers_help: str = "workers of the tool's runs",
    repeat_help: str = "rounds of every case, alternated; the tables keep each case's "
    "fastest run and its highest peak",
) -> None:
    """The options every benchmark script has (each with its own defaults)."""
    if data is None:
        p.add_argument("--data", type=Path, required=True, help="folder of the generated stack")
    else:
        p.add_argument(
            "--data",
            type=Path,
            default=data,
            help="cache of generated stacks and of run outputs and logs (default: %(default)s)",
        )
    p.add_argument("--out", type=Path, default=out, help="results folder (default: %(default)s)")
    p.add_argument("--workers", type=int, default=workers, help=f"{workers_help} (%(default)s)")
    p.add_argument("--repeat", type=int, default=repeat, help=f"{repeat_help} (%(default)s)")
    p.add_argument(
        "--python", default=sys.executable, help="interpreter of the runs (default: this one)"
    )
    if package_root:
        p.add_argument(
            "--package-root",
            type=Path,
            default=REPO,
            help="checkout whose windowed_classify is measured (first on PYTHONPATH; "
            "default: the one holding this script)",
        )
    p.add_argument(
        "--timeout",
        type=float,
        default=timeout,
        help="seconds per run; its process group is killed after (%(default)s)",
    )
    p.add_argument("--poll", type=float, default=0.05, help="RSS polling interval, seconds")
    p.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each run, wait up to this long for other processes to use less than "
        f"{CONTENTION} of a core (default 0: do not wait)",
    )


def finish_options(args: argparse.Namespace) -> argparse.Namespace:
    """Absolute data paths (the configs hold them) and the environment of the runs."""
    args.data = args.data.resolve()
    root = getattr(args, "package_root", None)
    args.env = package_env(root.resolve() if root is not None else None)
    return args


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Bench:
    """One invocation of a benchmark script: its cases, run in alternating rounds and each
    measured by :func:`run_case`, and its result document (``<stem>.json`` and
    ``<stem>.md``), rewritten after every run so that an interrupted invocation keeps what
    it measured."""

    def __init__(
        self,
        stem: Path,
        args: argparse.Namespace,
        *,
        machine: dict[str, Any],
        summarize: Callable[[list[CaseResult]], dict[str, Any]],
        render: Callable[[dict[str, Any]], str],
        hide: Sequence[str] = (),
        **fields: Any,
    ) -> None:
        self.stem = stem
        self.args = args
        self.summarize = summarize
        self.render = render
        self.runs: list[CaseResult] = []
        hidden = {"env", *hide}
        self.doc: dict[str, Any] = {
            "started": _now(),
            "finished": None,
            "machine": machine,
            "args": {
                k: str(v) if isinstance(v, Path) else v
                for k, v in vars(args).items()
                if k not in hidden
            },
            **fields,
            "runs": [],
        }

    def rounds(self, cases: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """(round, case) for every case, round after round, so that load on a shared
        machine falls on all cases alike."""
        for round_ in range(self.args.repeat):
            for case in cases:
                yield round_, case

    def run(
        self, label: str, name: str, case: Case | str, round_: int, params: dict[str, Any]
    ) -> CaseResult:
        """Measure one case, or record why it is skipped (``case`` is then the reason);
        print one line; save the document."""
        print(f"[{label}] {name} (round {round_ + 1}/{self.args.repeat}) ...", end=" ", flush=True)
        if isinstance(case, str):
            res = CaseResult(case=name, status="skipped", params=params, repeat=round_)
            res.error = case
        else:
            res = run_case(
                case,
                timeout=self.args.timeout,
                poll=self.args.poll,
                wait_idle_s=self.args.wait_idle,
                repeat=round_,
            )
        print_outcome(res)
        self.runs.append(res)
        self.save()
        return res

    def save(self) -> None:
        self.doc["finished"] = _now()
        self.doc["runs"] = [asdict(r) for r in self.runs]
        self.doc["summary"] = self.summarize(self.runs)
        write_json(self.stem.with_suffix(".json"), self.doc)
        self.stem.with_suffix(".md").write_text(self.render(self.doc))

    def wrote(self, *extra: Path) -> None:
        names = [self.stem.with_suffix(".json"), self.stem.with_suffix(".md"), *extra]
        print(f"\nwrote {', '.join(str(p) for p in names)}")


def runs_of(doc: dict[str, Any]) -> list[CaseResult]:
    """A result document's runs, as written by :meth:`Bench.save`."""
    return [CaseResult(**r) for r in doc["runs"]]


def timing(r: CaseResult | None, key: str) -> float | None:
    """One figure of the tool's report timings (``pass1_seconds``, ...), if it has it."""
    t = (r.detail.get("timing") if r is not None else None) or {}
    return t.get(key) if isinstance(t, dict) else None


def fastest(runs: Iterable[CaseResult]) -> CaseResult | None:
    ok = [r for r in runs if r.status == "ok"]
    return min(ok, key=lambda r: r.wall_s if r.wall_s is not None else float("inf")) if ok else None


def lowest(values: Iterable[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return min(got) if got else None


def machine_line(m: dict[str, Any], *extra: str) -> str:
    """The machine and versions of a result document, as one sentence for its markdown."""
    v = m.get("versions", {})
    parts = [
        f"{m.get('cpu_count')} CPUs ({m.get('cpu_model', '?')}), {m.get('ram_gb')} GB RAM",
        f"Python {m.get('python')}, numpy {v.get('numpy')}, pandas {v.get('pandas')}",
        f"rasterio {v.get('rasterio')} (GDAL {v.get('gdal')})",
        f"scikit-learn {v.get('scikit-learn')}",
        *(f"{d} {v.get(d)}" for d in extra),
        f"windowed_classify {v.get('windowed_classify')} ({v.get('windowed_classify_file')})",
        f"commit {str(m.get('git_commit'))[:10]}",
    ]
    return ", ".join(parts) + "."


def load_line(r: CaseResult) -> str:
    return " / ".join(f"{x:.2f}" for x in r.load_avg or []) or "-"


def busy_runs(runs: Iterable[CaseResult], name: Callable[[CaseResult], str]) -> list[str]:
    """The runs during which the rest of the machine used more than CONTENTION cores, the
    busiest first."""
    shares = [
        (contended_share(r.other_cpu_s, r.wall_s) or 0.0, name(r)) for r in runs if r.status == "ok"
    ]
    return [n for share, n in sorted(shares, reverse=True) if share > CONTENTION]


def busy_warning(busy: list[str]) -> list[str]:
    if not busy:
        return []
    return [
        f"**Warning: the machine was busy** during {len(busy)} of these runs (other processes "
        f"used more than {CONTENTION:.0%} of a core on average while they ran; see the other "
        f"CPU s column): their times are not trustworthy. Busiest: {', '.join(busy[:6])}.",
        "",
    ]
