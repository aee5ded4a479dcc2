"""Issue #20's figures, side by side: first against warm runs, the notebook, Dask against the
local engine pass by pass, and peak memory as the raster grows.

  python benchmarks/bench_passes.py --data /work/bench_data          # first_warm, dask, memory
  python benchmarks/bench_passes.py --data /work/bench_data --presets dask
  python benchmarks/bench_passes.py --presets seed --seed-data /work/benchdata/seed
  python benchmarks/bench_passes.py --smoke --data /tmp/bench-passes-smoke   # all, tiny

Each preset has its own stack(s); its cases run as their own processes (measured by
harness.py: wall time, peak RSS of the process tree), alternating over ``--repeat`` rounds;
every figure is the median of a case's rounds, and every ratio is between cases of one
preset, measured in the same invocation.

- ``first_warm`` (``--first-warm-stack``, 2000x100: datagen.py's float32 LZW tiled stack and
  RandomForest): the tool with the statistics cache off (``first_t0``, ``first_t1``: a
  first run) and on, filled by one run before the rounds (``warm_t0``, ``warm_t1``); the
  in-memory notebook (notebook_baseline.py) at threshold 1 (``notebook_t1``).
- ``dask`` (``--dask-stack``, 5000x16, datagen's scattered nodata, ``--dask-threshold`` 1,
  cache off): ``local`` (the local engine, ``--workers`` threads), ``dask`` (the run starts
  its own LocalCluster of ``--workers`` single-threaded processes, inside the timed run) and
  ``dask_existing`` (a LocalCluster started beforehand in its own process by
  dask_cluster.py, outside the timed run; its peak is given with the cluster's processes
  too). Pass 1 and pass 2 are the tool's report's ``pass1_seconds`` and ``pass2_seconds``.
  With ``--kill 30 80``, also ``killed_30`` and ``killed_80``: on that cluster, one worker
  process SIGKILLed (its nanny restarts it) once the run's ``--progress json`` events say
  30 % (80 %) of pass 2's pixels are done: the cost of a lost worker, and the output must
  still be identical (a run that ended before its kill is not counted).
- ``memory`` (``--memory-stacks``, 2000x20 and 8000x20: 4 M and 64 M pixels per layer), at
  each of ``--memory-thresholds`` (0 and 1), cache off: the peak of the tree, and its growth.
- ``seed`` (``--seed-stack``, 4472x100, seedgen.py's stack under ``--seed-data``): first
  and warm runs as in ``first_warm``, without the notebook.

Every figure is printed with its target from #20. Outputs are compared pixel by pixel
within a preset (and the tool runs' medians), and must be identical. Writes
``<out>/<name>.json`` and ``.md`` (default ``benchmarks/results/passes/bench_passes``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness
from harness import CLASS_OUTPUT, Case, CaseResult, fmt, md_table, ratio

HERE = harness.HERE
PRESETS = ("first_warm", "dask", "memory", "seed")
DEFAULT_PRESETS = ("first_warm", "dask", "memory")
DEFAULT_STACKS = {
    "first_warm": "2000x100",
    "dask": "5000x16",
    "memory": ["2000x20", "8000x20"],
    "seed": "4472x100",
}
SMOKE_STACKS = {
    "first_warm": "300x8",
    "dask": "400x4",
    "memory": ["200x4", "400x4"],
    "seed": "300x6",
}


@dataclass(frozen=True)
class Figure:
    """A ratio of two cases' medians (``measure``: wall, pass1, pass2 or peak), held to #20's
    target (at most ``bound``)."""

    preset: str
    label: str
    case: str
    base: str
    measure: str
    bound: float | None  # None: no target (a failure's cost)


def figures(args: argparse.Namespace) -> list[Figure]:
    """#20's figures of the presets asked for, with its targets."""
    out: list[Figure] = []
    for preset in ("first_warm", "seed"):
        for t in args.thresholds:
            out.append(
                Figure(preset, f"first / warm run, t{t}", f"first_t{t}", f"warm_t{t}", "wall", 1.25)
            )
    if 1 in args.thresholds:
        out += [
            Figure(
                "first_warm", "first run / notebook, t1", "first_t1", "notebook_t1", "wall", 0.5
            ),
            Figure(
                "first_warm",
                "first run / notebook, peak, t1",
                "first_t1",
                "notebook_t1",
                "peak",
                0.1,
            ),
        ]
    for case in ("dask", "dask_existing"):
        out += [
            Figure("dask", f"{case} / local, pass 1", case, "local", "pass1", 1.15),
            Figure("dask", f"{case} / local, pass 2", case, "local", "pass2", 1.15),
            Figure("dask", f"{case} / local, whole run", case, "local", "wall", 1.3),
        ]
    for share in args.kill:
        name = f"killed_{share}"
        out += [
            Figure("dask", f"{name} / dask_existing, pass 2", name, "dask_existing", "pass2", None),
            Figure(
                "dask", f"{name} / dask_existing, whole run", name, "dask_existing", "wall", None
            ),
        ]
    for t in args.memory_thresholds:
        out.append(
            Figure(
                "memory",
                f"peak, large / small stack, t{t}",
                f"large_t{t}",
                f"small_t{t}",
                "peak",
                1.15,
            )
        )
    return [f for f in out if f.preset in args.presets]


# --------------------------------------------------------------------------- stacks


@dataclass(frozen=True)
class Data:
    """A generated stack and its model."""

    key: str  # <size>x<layers>
    size: int
    layers: int
    layer_dir: Path
    model_path: Path
    nodata_value: float


def parse_stack(text: str) -> tuple[int, int]:
    """``2000x100`` -> (size, layers)."""
    try:
        size, layers = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"error: a stack is SIZExLAYERS, e.g. 2000x100, not {text!r}") from None
    return size, layers


def datagen_stack(args: argparse.Namespace, spec: str) -> Data:
    """datagen.py's tiled stack (generated, or reused as it is, in a child process)."""
    size, layers = parse_stack(spec)
    ds = harness.ensure_stacks(args.python, args.data, size, layers, ["tiled"])["tiled"]
    return Data(
        f"{size}x{layers}",
        size,
        layers,
        ds.layer_dir,
        ds.model_path,
        float(ds.manifest["nodata_value"]),
    )


def seed_stack(args: argparse.Namespace) -> Data:
    """seedgen.py's stack (bench_seed.py's), under ``--seed-data``."""
    from bench_seed import ensure_stack

    size, layers = parse_stack(args.seed_stack)
    found = ensure_stack(args.python, args.seed_data, size, layers)
    return Data(
        f"{size}x{layers}",
        size,
        layers,
        Path(found["layer_dir"]),
        Path(found["model_path"]),
        float(found["manifest"]["nodata_value"]),
    )


# --------------------------------------------------------------------------- cases


def tool_case(
    args: argparse.Namespace,
    name: str,
    data: Data,
    run_dir: Path,
    threshold: int,
    processing: dict[str, Any],
    watch: Sequence[int] = (),
) -> Case:
    """``python -m windowed_classify`` on the stack (a fresh run folder)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    output = run_dir / "prediction.tif"
    config = run_dir / "config.yaml"
    harness.write_yaml(
        config,
        harness.tool_config(
            data.layer_dir,
            data.nodata_value,
            {"path": str(data.model_path)},
            {"path": str(output), **CLASS_OUTPUT},
            threshold=threshold,
            processing={"workers": args.workers, **processing},
        ),
    )
    command = [args.python, "-m", "windowed_classify", str(config), "--quiet"]
    if name.startswith("killed_"):  # its progress events say when to kill a worker
        command += ["--progress", "json"]
    return Case(
        name=name,
        command=command,
        run_dir=run_dir,
        report=output.with_suffix(".report.json"),
        env=args.env,
        watch=watch,
    )


def notebook_case(
    args: argparse.Namespace, name: str, data: Data, run_dir: Path, threshold: int
) -> Case:
    """notebook_baseline.py on the same config as the tool's."""
    case = tool_case(args, name, data, run_dir, threshold, {})
    result = run_dir / "result.json"
    case.command = [
        *(args.python, str(HERE / "notebook_baseline.py"), str(run_dir / "config.yaml")),
        *("--chunk-rows", str(args.chunk_rows), "--result", str(result)),
    ]
    case.report, case.result = None, result
    return case


Plan = list[tuple[str, dict[str, Any], Callable[[], Case]]]  # name, params, build
# what runs beside a case (it may add to the result's detail)
During = Callable[[Case, dict[str, Any]], contextlib.AbstractContextManager[Any]]


def run_plan(
    bench: harness.Bench, preset: str, plan: Plan, during: dict[str, During] | None = None
) -> None:
    for round_, (name, params, build) in bench.rounds(plan):
        case = build()
        case.params = {"preset": preset, **params}  # what the result records
        extra: dict[str, Any] = {}
        around = (during or {}).get(name)
        with around(case, extra) if around else contextlib.nullcontext():
            res = bench.run(preset, name, case, round_, case.params)
        if extra:
            res.detail.update(extra)
            bench.save()


def first_warm(args: argparse.Namespace, bench: harness.Bench, preset: str) -> None:
    """First runs (cache off), warm runs (cache filled before the rounds) and, on
    ``first_warm``, the notebook at threshold 1."""
    data = seed_stack(args) if preset == "seed" else datagen_stack(args, args.first_warm_stack)
    root = args.data / "runs" / "passes" / preset / data.key
    cache = root / "stats_cache"
    shutil.rmtree(cache, ignore_errors=True)
    harness.warm_cache(data.layer_dir.iterdir())
    warm = {"stats_cache": True, "cache_dir": str(cache)}
    base = {"stack": data.key, "pixels": data.size**2, "layers": data.layers}
    fill = tool_case(args, "cache_fill", data, root / "cache_fill", args.thresholds[0], warm)
    fill.params = {"preset": preset, **base, "threshold": args.thresholds[0]}
    bench.run(preset, "cache_fill", fill, 0, fill.params)
    plan: Plan = []
    for t in args.thresholds:
        for name, processing in ((f"first_t{t}", {}), (f"warm_t{t}", warm)):
            plan.append(
                (
                    name,
                    {**base, "threshold": t},
                    lambda n=name, t=t, p=processing: tool_case(args, n, data, root / n, t, p),
                )
            )
    if preset == "first_warm" and 1 in args.thresholds and not args.no_notebook:
        # last in each round: it fills RAM and may evict the stack from the page cache
        plan.append(
            (
                "notebook_t1",
                {**base, "threshold": 1},
                lambda: notebook_case(args, "notebook_t1", data, root / "notebook_t1", 1),
            )
        )
    run_plan(bench, preset, plan)
    for t in args.thresholds:
        names = [n for n, p, _ in plan if p["threshold"] == t]
        agree(bench, preset, {n: root / n / "prediction.tif" for n in names}, t)


@contextlib.contextmanager
def local_cluster(args: argparse.Namespace) -> Iterator[tuple[int, str]]:
    """A LocalCluster in its own process (dask_cluster.py): (its pid, its address)."""
    log = args.data / "runs" / "passes" / "dask_cluster.log"  # its workers' restarts, say
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [args.python, str(HERE / "dask_cluster.py"), "--workers", str(args.workers)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=args.env,
            start_new_session=True,
        )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line:
            raise SystemExit(f"the LocalCluster did not start (exit {proc.wait()})")
        yield proc.pid, json.loads(line)["address"]
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()  # type: ignore[union-attr]  # dask_cluster.py then stops
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _progress(stderr: Path) -> dict[str, Any] | None:
    """The last progress event a run printed (``--progress json``) so far."""
    try:
        lines = stderr.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("event") == "progress":
                    return dict(event)
    return None


def _workers_of(cluster_pid: int) -> list[Any]:
    """The worker processes of dask_cluster.py's LocalCluster (its nannies' children)."""
    import psutil

    try:
        children = psutil.Process(cluster_pid).children(recursive=True)
    except psutil.Error:
        return []
    found = []
    for p in children:
        with contextlib.suppress(psutil.Error):
            line = " ".join(p.cmdline())
            if "spawn_main" in line and "resource_tracker" not in line:
                found.append(p)
    return found


def killing_a_worker(cluster_pid: int, workers: int, share: int) -> During:
    """While a case runs on dask_cluster.py's LocalCluster: SIGKILL one of its worker
    processes once the run's progress events (its stderr) say ``share`` % of pass 2's pixels
    are done; afterwards, wait until the nanny has restarted it."""

    @contextlib.contextmanager
    def around(case: Case, detail: dict[str, Any]) -> Iterator[None]:
        stop = threading.Event()
        stderr = case.run_dir / "stderr.txt"

        def watch() -> None:
            while not stop.wait(0.05):
                event = _progress(stderr)
                if event is None or event["stage"] != "pass2" or event["done"] >= event["total"]:
                    continue
                if event["done"] * 100 >= share * event["total"]:
                    for victim in _workers_of(cluster_pid)[:1]:
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(victim.pid, signal.SIGKILL)
                            detail["killed"] = {"pid": victim.pid, "at": event}
                    return

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # the restarted worker up for a few seconds
                ready = [p for p in _workers_of(cluster_pid) if time.time() - p.create_time() > 5]
                if len(ready) >= workers:
                    break
                time.sleep(0.5)
            detail.setdefault("killed", None)

    return around


def dask(args: argparse.Namespace, bench: harness.Bench, preset: str) -> None:
    """The local engine, the Dask engine with its own LocalCluster, and on one started
    before, alternating; with ``--kill``, runs on that cluster with a worker killed."""
    data = datagen_stack(args, args.dask_stack)
    root = args.data / "runs" / "passes" / preset / f"{data.key}_t{args.dask_threshold}"
    harness.warm_cache(data.layer_dir.iterdir())
    params = {"stack": data.key, "threshold": args.dask_threshold, "workers": args.workers}
    t = args.dask_threshold
    with local_cluster(args) as (pid, address):
        engines: dict[str, tuple[dict[str, Any], Sequence[int]]] = {
            "local": ({"engine": "local"}, ()),
            "dask": ({"engine": "dask", "scheduler": "local"}, ()),
            "dask_existing": ({"engine": "dask", "scheduler": address}, (pid,)),
        }
        during: dict[str, During] = {}
        for share in args.kill:
            name = f"killed_{share}"
            engines[name] = ({"engine": "dask", "scheduler": address}, (pid,))
            during[name] = killing_a_worker(pid, args.workers, share)
        plan: Plan = [
            (
                name,
                params,
                lambda n=name, p=processing, w=watch: tool_case(args, n, data, root / n, t, p, w),
            )
            for name, (processing, watch) in engines.items()
        ]
        run_plan(bench, preset, plan, during)
    agree(bench, preset, {n: root / n / "prediction.tif" for n in engines}, t)


def memory(args: argparse.Namespace, bench: harness.Bench, preset: str) -> None:
    """The same run on a small and a large stack of as many layers: the peak's growth."""
    small, large = (datagen_stack(args, spec) for spec in args.memory_stacks)
    root = args.data / "runs" / "passes" / preset
    for data in (small, large):
        harness.warm_cache(data.layer_dir.iterdir())
    plan: Plan = []
    for t in args.memory_thresholds:
        for which, data in (("small", small), ("large", large)):
            name = f"{which}_t{t}"
            params = {"stack": data.key, "pixels": data.size**2, "threshold": t}
            plan.append(
                (name, params, lambda n=name, d=data, t=t: tool_case(args, n, d, root / n, t, {}))
            )
    run_plan(bench, preset, plan)


def agree(bench: harness.Bench, preset: str, rasters: dict[str, Path], threshold: int) -> None:
    """The last round's classified rasters pixel by pixel, and the tool runs' medians."""
    found = bench.doc.setdefault("agreement", [])
    for entry in harness.compare_rasters(rasters):
        found.append({"preset": preset, "threshold": threshold, **entry})
    last: dict[str, Any] = {}
    for r in bench.runs:
        mine = r.params.get("preset") == preset and r.case in rasters and r.status == "ok"
        if mine and r.detail.get("medians") is not None:
            last[r.case] = r.detail["medians"]
    if len(last) > 1:
        first = next(iter(last.values()))
        found.append(
            {
                "preset": preset,
                "threshold": threshold,
                "a": "medians",
                "b": ", ".join(last),
                "identical": all(m == first for m in last.values()),
            }
        )
    bench.save()


# --------------------------------------------------------------------------- summary


def measure(r: CaseResult, what: str) -> float | None:
    if what == "wall":
        return r.wall_s
    if what == "peak":
        return r.peak_rss_mb
    return harness.timing(r, f"{what}_seconds")


def counted(r: CaseResult) -> bool:
    """A run that measured its case (a ``killed_`` run whose worker was killed)."""
    return r.status == "ok" and (not r.case.startswith("killed_") or bool(r.detail.get("killed")))


def median_of(runs: list[CaseResult], preset: str, case: str, what: str) -> float | None:
    values = [
        v
        for r in runs
        if r.params.get("preset") == preset and r.case == case and counted(r)
        if (v := measure(r, what)) is not None
    ]
    return round(statistics.median(values), 3) if values else None


def summarize(runs: list[CaseResult], wanted: list[Figure]) -> dict[str, Any]:
    """Per case the medians of its rounds; per figure the ratio of two cases' medians."""
    cases: dict[tuple[str, str], dict[str, Any]] = {}
    for r in runs:
        key = (r.params.get("preset", "?"), r.case)
        row = cases.setdefault(
            key, {"preset": key[0], "case": r.case, "params": r.params, "ok": 0, "runs": 0}
        )
        row["runs"] += 1
        row["ok"] += counted(r)
    for (preset, case), row in cases.items():
        for what in ("wall", "pass1", "pass2", "total", "peak"):
            row[f"median_{what}"] = median_of(runs, preset, case, what)
        extra = [
            r.watched_peak_rss_mb
            for r in runs
            if r.case == case and r.params.get("preset") == preset and r.watched_peak_rss_mb
        ]
        row["median_peak_with_cluster"] = statistics.median(extra) if extra else None
        modes = {
            str(r.detail.get("pass1"))
            for r in runs
            if r.case == case and r.params.get("preset") == preset and r.detail.get("pass1")
        }
        row["pass1_mode"] = "/".join(sorted(modes)) or None
    out = []
    for f in wanted:
        a = median_of(runs, f.preset, f.case, f.measure)
        b = median_of(runs, f.preset, f.base, f.measure)
        value = ratio(a, b)
        out.append(
            {
                "preset": f.preset,
                "figure": f.label,
                "measure": f.measure,
                "case": f.case,
                "base": f.base,
                "case_value": a,
                "base_value": b,
                "ratio": value,
                "difference": None if a is None or b is None else round(a - b, 3),
                "bound": f.bound,
                "met": None if value is None or f.bound is None else value <= f.bound,
            }
        )
    return {"cases": list(cases.values()), "figures": out}


def figure_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = ["preset", "figure", "case", "base", "difference", "ratio", "target", "met"]
    rows = [
        [
            f["preset"],
            f["figure"],
            f"{fmt(f['case_value'])} ({f['case']})",
            f"{fmt(f['base_value'])} ({f['base']})",
            fmt(f.get("difference")),
            fmt(f["ratio"], 3),
            "-" if f["bound"] is None else f"<= {f['bound']:g}",
            {True: "yes", False: "NO", None: "-"}[f["met"]],
        ]
        for f in summary["figures"]
    ]
    return head, rows


def case_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = ["preset", "case", "stack", "t", "pass 1", "ok/runs", "wall s", "pass 1 s"]
    head += ["pass 2 s", "peak MB", "+cluster MB"]
    rows = [
        [
            c["preset"],
            c["case"],
            str(c["params"].get("stack", "-")),
            fmt(c["params"].get("threshold")),
            fmt(c.get("pass1_mode")),
            f"{c['ok']}/{c['runs']}",
            fmt(c["median_wall"]),
            fmt(c["median_pass1"]),
            fmt(c["median_pass2"]),
            fmt(c["median_peak"], 0),
            fmt(c["median_peak_with_cluster"], 0),
        ]
        for c in summary["cases"]
    ]
    return head, rows


def render(doc: dict[str, Any]) -> str:
    """<name>.md."""
    a = doc["args"]
    parts = [
        "# Issue #20's figures: first and warm runs, the notebook, Dask, memory growth",
        "",
        f"{doc['finished']} on {harness.machine_line(doc['machine'], 'distributed')} "
        f"{a['workers']} workers; medians of {a['repeat']} alternating rounds; ratios "
        "between cases of one preset, measured in this invocation. wall: the process's "
        "wall time, start-up included; pass 1 / pass 2: the tool's report (`pass 1`: how it "
        "counted the statistics: in pass 2's read (fused, deferred: pass 1 s is then the "
        "guide's decision and the medians' finish), apart (separate), or from the cache); "
        "peak: the summed RSS of the process tree (`+cluster`: with an existing cluster's "
        "processes).",
        "",
        "## Figures and #20's targets",
        "",
        md_table(*figure_rows(doc["summary"])),
        "",
        "## Cases (medians)",
        "",
        md_table(*case_rows(doc["summary"])),
        "",
    ]
    parts += harness.busy_warning(harness.busy_runs(harness.runs_of(doc), lambda r: r.case))
    if doc.get("agreement"):
        head = ["preset", "threshold", "a", "b", "differing pixels", "note"]
        rows = [
            [
                x["preset"],
                fmt(x["threshold"]),
                x["a"],
                x["b"],
                fmt(x.get("differing")),
                x.get("error") or ("identical" if x.get("identical") else "**differ**"),
            ]
            for x in doc["agreement"]
        ]
        parts += ["## Output agreement (last round)", "", md_table(head, rows), ""]
    head = ["preset", "round", "case", "status", "wall s", "pass 1 s", "pass 2 s", "peak MB"]
    head += ["load before", "other CPU s"]
    rows = [
        [
            str(r.params.get("preset")),
            str(r.repeat),
            r.case,
            r.status if r.status == "ok" else f"{r.status}: {harness.last_line(r.error)}",
            fmt(r.wall_s),
            fmt(harness.timing(r, "pass1_seconds")),
            fmt(harness.timing(r, "pass2_seconds")),
            fmt(r.peak_rss_mb, 0),
            harness.load_line(r),
            fmt(r.other_cpu_s, 1),
        ]
        for r in harness.runs_of(doc)
    ]
    parts += ["## Every run", "", md_table(head, rows), ""]
    return "\n".join(parts)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--presets",
        nargs="+",
        choices=PRESETS,
        default=None,
        help=f"what to measure, in this order (default: {' '.join(DEFAULT_PRESETS)}; "
        "seed only when named)",
    )
    p.add_argument("--first-warm-stack", default=None, help="SIZExLAYERS (2000x100)")
    p.add_argument("--thresholds", type=int, nargs="+", default=[0, 1], help="first/warm (0 1)")
    p.add_argument("--no-notebook", action="store_true", help="first_warm without the notebook")
    p.add_argument("--chunk-rows", type=int, default=1_000_000, help="notebook predict chunks")
    p.add_argument("--dask-stack", default=None, help="SIZExLAYERS (5000x16)")
    p.add_argument("--dask-threshold", type=int, default=1, help="nodata.threshold (1)")
    p.add_argument(
        "--kill",
        type=int,
        nargs="*",
        default=[],
        metavar="PERCENT",
        help="dask preset: also run on the existing cluster with one worker process killed "
        "(SIGKILL) at each of these shares of pass 2's pixels, e.g. --kill 30 80",
    )
    p.add_argument("--memory-stacks", nargs=2, default=None, help="SMALL LARGE (2000x20 8000x20)")
    p.add_argument("--memory-thresholds", type=int, nargs="+", default=[0, 1], help="(0 1)")
    p.add_argument("--seed-stack", default=None, help="SIZExLAYERS (4472x100)")
    p.add_argument(
        "--seed-data", type=Path, default=None, help="seedgen.py's folder (default: --data/seed)"
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="tiny stacks for every preset (a check that the script works, minutes)",
    )
    p.add_argument("--name", default="bench_passes", help="file stem in --out")
    harness.add_options(p, out=HERE / "results" / "passes", workers=2, repeat=3, timeout=3600)
    args = harness.finish_options(p.parse_args(argv))
    stacks = SMOKE_STACKS if args.smoke else DEFAULT_STACKS
    for preset in PRESETS:
        key = f"{preset}_stack" if preset != "memory" else "memory_stacks"
        if getattr(args, key) is None:
            setattr(args, key, stacks[preset])
    for spec in (args.first_warm_stack, args.dask_stack, args.seed_stack, *args.memory_stacks):
        parse_stack(spec)
    args.presets = args.presets or list(DEFAULT_PRESETS)
    args.seed_data = (args.seed_data or args.data / "seed").resolve()
    return args


RUNNERS = {"first_warm": first_warm, "seed": first_warm, "dask": dask, "memory": memory}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    harness.exit_on_sigterm()
    missing = harness.tool_available(args.python, args.env)
    if missing:
        raise SystemExit(f"error: {missing}")
    wanted = figures(args)
    bench = harness.Bench(
        args.out / args.name,
        args,
        machine=harness.machine_info(args.python, args.env, ("distributed", "dask")),
        summarize=lambda runs: summarize(runs, wanted),
        render=render,
        agreement=[],
    )
    for preset in args.presets:
        RUNNERS[preset](args, bench, preset)
    bench.save()
    summary = bench.doc["summary"]
    print()
    harness.print_table(*case_rows(summary))
    print()
    harness.print_table(*figure_rows(summary))
    bad = [a for a in bench.doc["agreement"] if a.get("identical") is False or a.get("error")]
    for a in bad:
        print(f"warning: {a['preset']} t{a['threshold']}: {a['a']} and {a['b']} differ: {a}")
    bench.wrote()
    ok = all(r.status == "ok" for r in bench.runs)
    return 0 if ok and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
