"""Remote layers against local disk: the same stack read from disk and over HTTP on loopback
with a fixed latency added to every request.

For each stack (``--stacks``, SIZExLAYERS) the layers are served by tests/httpserver.py (its
own process on 127.0.0.1, started and stopped here; the server's CPU shows as "other CPU" in
the record) and the tool runs once per case, as its own process (harness.py measures it):

- ``local``: ``rasters.folder`` on local disk;
- ``http_<N>ms``: ``rasters.files`` as ``/vsicurl/http://127.0.0.1:PORT/<layer>.tif``, the
  server sleeping N ms before answering each request (``--latencies``);
- with ``--fail-share S``, each HTTP case also runs with that share of requests answered 503
  (``http_<N>ms_503``), to measure what the retries cost.

Statistics cache off, ``--workers`` workers, cases alternated over ``--repeat`` rounds. Every
output must equal the local run's, pixel for pixel, and every layer's median too. Prints a
table (time, ratio to local, requests served, retries) and writes ``<out>/<name>.json`` and
``.md``.

    python benchmarks/bench_remote.py                        # 2000^2 x 16 and 2000^2 x 100
    python benchmarks/bench_remote.py --stacks 2000x16 --latencies 0 50 --repeat 2
    python benchmarks/bench_remote.py --stacks 200x4 --latencies 0 20 --name smoke  # a smoke run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import harness
import numpy as np
import yaml
from harness import Case, CaseResult, Stack, ensure_stacks, fmt, md_table, ratio

HERE = harness.HERE
sys.path.insert(0, str(harness.REPO / "tests"))
from httpserver import RangeServer  # noqa: E402 - the tests' server, shared

LATENCIES_MS = (0, 20, 50, 100)


def parse_stack(text: str) -> tuple[int, int]:
    size, _, layers = text.lower().partition("x")
    try:
        return int(size), int(layers)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected SIZExLAYERS (e.g. 2000x16), got {text!r}"
        ) from None


def write_config(
    path: Path,
    ds: Stack,
    output: Path,
    workers: int,
    server_url: str | None,
    read_ahead: int | None = None,
) -> None:
    """The stack from its folder (``server_url`` None) or, layer by layer, from the server."""
    if server_url is None:
        rasters: dict[str, Any] = {"folder": str(ds.layer_dir), "extensions": [".tif"]}
    else:
        files = sorted(ds.layer_dir.glob("*.tif"))
        rasters = {"files": {f.stem: f"/vsicurl/{server_url}/{f.name}" for f in files}}
    cfg = {
        "rasters": rasters,
        "nodata": {"values": [ds.manifest["nodata_value"]], "use_file_nodata": True},
        "model": {"path": str(ds.model_path)},
        "output": {"path": str(output), "overwrite": True},
        "processing": {"stats_cache": False, "workers": workers},
    }
    if read_ahead is not None:
        cfg["processing"]["read_ahead"] = read_ahead
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def case_names(latencies: list[int], fail_share: float) -> list[str]:
    names = ["local"]
    for ms in latencies:
        names.append(f"http_{ms}ms")
        if fail_share > 0:
            names.append(f"http_{ms}ms_503")
    return names


def case_setting(name: str, fail_share: float) -> tuple[float, float]:
    """(latency in seconds, share of 503 answers) of an HTTP case."""
    ms = int(name.split("_")[1].removesuffix("ms"))
    return ms / 1000, (fail_share if name.endswith("_503") else 0.0)


def run_record(res: CaseResult, stack: str, round_: int, served: dict[str, int]) -> dict[str, Any]:
    d = res.detail
    return {
        "stack": stack,
        "case": res.case,
        "round": round_,
        "status": res.status,
        "wall_seconds": res.wall_s,
        "timing": d.get("timing"),
        "medians": d.get("medians"),
        "retries": d.get("remote_retries"),  # the report's: every read's retries
        "peak_memory_mb": d.get("peak_memory_mb"),
        "tree_peak_rss_mb": res.peak_rss_mb,
        "cpu_seconds": res.cpu_s,
        "other_cpu_seconds": res.other_cpu_s,  # the HTTP server's included
        "windows": d.get("windows"),
        "engine": d.get("engine"),
        "served": served,
        "load_before": res.load_avg,
        "error": res.error,
    }


def _timing(run: dict[str, Any], key: str) -> float | None:
    t = run.get("timing") or {}
    return t.get(key) if isinstance(t, dict) else None


def _best(values: list[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return min(got) if got else None


def summarize(
    runs: list[dict[str, Any]], names: list[str], identical: dict[tuple[str, str], bool]
) -> dict[str, dict[str, Any]]:
    """Per stack and case: the best times, ratios to local, what the server served."""
    summary: dict[str, dict[str, Any]] = {}
    for stack in dict.fromkeys(r["stack"] for r in runs):
        per: dict[str, Any] = {}
        for name in names:
            mine = [r for r in runs if (r["stack"], r["case"]) == (stack, name)]
            ok = [r for r in mine if r["status"] == "ok"]
            if not ok:
                per[name] = {"status": "failed", "identical_to_local": False}
                continue
            per[name] = {
                "best_wall_seconds": min(r["wall_seconds"] for r in ok),
                "best_pass1_seconds": _best([_timing(r, "pass1_seconds") for r in ok]),
                "best_pass2_seconds": _best([_timing(r, "pass2_seconds") for r in ok]),
                "best_total_seconds": _best([_timing(r, "total_seconds") for r in ok]),
                "max_tree_peak_rss_mb": max(r["tree_peak_rss_mb"] or 0 for r in ok),
                "requests": max(r["served"].get("requests", 0) for r in ok),
                "failed_requests": max(r["served"].get("failed", 0) for r in ok),
                "most_files_at_once": max(r["served"].get("most_files", 0) for r in ok),
                "identical_to_local": identical.get((stack, name), False),
            }
        base = per.get("local", {})
        for s in per.values():
            s["ratio_to_local"] = ratio(s.get("best_wall_seconds"), base.get("best_wall_seconds"))
            s["total_ratio_to_local"] = ratio(
                s.get("best_total_seconds"), base.get("best_total_seconds")
            )
        summary[stack] = per
    return summary


def same_medians(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    if not a or not b or set(a) != set(b):
        return False
    return all(np.float32(a[k]).tobytes() == np.float32(b[k]).tobytes() for k in a)


def table_rows(summary: dict[str, dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    head = ["stack", "case", "wall s", "pass 1 s", "pass 2 s", "total s", "wall ratio"]
    head += ["total ratio", "requests", "files at once", "503s", "peak MB", "identical"]
    rows = []
    for stack, per in summary.items():
        for name, s in per.items():
            rows.append(
                [
                    stack,
                    name,
                    fmt(s.get("best_wall_seconds")),
                    fmt(s.get("best_pass1_seconds")),
                    fmt(s.get("best_pass2_seconds")),
                    fmt(s.get("best_total_seconds")),
                    fmt(s.get("ratio_to_local")),
                    fmt(s.get("total_ratio_to_local")),
                    fmt(s.get("requests")) if name != "local" else "-",
                    fmt(s.get("most_files_at_once")) if name != "local" else "-",
                    fmt(s.get("failed_requests")) if name != "local" else "-",
                    fmt(s.get("max_tree_peak_rss_mb"), 0),
                    fmt(s.get("identical_to_local")),
                ]
            )
    return head, rows


def write_markdown(path: Path, doc: dict[str, Any]) -> None:
    m = doc["machine"]
    v = m.get("versions", {})
    parts = [
        "# Remote layers: local disk against HTTP on loopback with added latency",
        "",
        f"{m.get('cpu_count')} CPUs ({m.get('cpu_model', '?')}), {m.get('ram_gb')} GB RAM, "
        f"Python {m.get('python')}, rasterio {v.get('rasterio')}, windowed_classify "
        f"{v.get('windowed_classify')}, commit {str(m.get('git_commit'))[:10]}. "
        f"{doc['workers']} workers, statistics cache off, processing.read_ahead "
        f"{doc['read_ahead'] if doc['read_ahead'] is not None else 'default'}, "
        f"best of {doc['repeat']} alternating "
        "rounds. `http_<N>ms`: every request answered after N ms (one server process on "
        "127.0.0.1); `_503`: with a share of 503 answers "
        f"({doc['fail_share']}). Ratios to the local run; 'identical': the map pixel for "
        "pixel and every median equal the local run's.",
        "",
        md_table(*table_rows(doc["summary"])),
        "",
    ]
    head = ["round", "stack", "case", "status", "wall s", "requests", "load before"]
    head += ["other CPU s"]
    rows = [
        [
            str(r["round"]),
            r["stack"],
            r["case"],
            r["status"],
            fmt(r["wall_seconds"]),
            fmt(r["served"].get("requests")),
            " / ".join(f"{x:.2f}" for x in r.get("load_before") or []),
            fmt(r.get("other_cpu_seconds"), 1),
        ]
        for r in doc["runs"]
    ]
    parts += ["## Every run", "", md_table(head, rows), ""]
    path.write_text("\n".join(parts))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--stacks",
        type=parse_stack,
        nargs="+",
        default=[(2000, 16), (2000, 100)],
        metavar="SIZExLAYERS",
    )
    p.add_argument("--latencies", type=int, nargs="+", default=list(LATENCIES_MS), metavar="MS")
    p.add_argument(
        "--fail-share",
        type=float,
        default=0.0,
        help="also run every latency with this share of requests answered 503 (e.g. 0.05)",
    )
    p.add_argument("--layout", default="tiled", choices=("tiled", "striped"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument(
        "--read-ahead",
        type=int,
        default=None,
        help="processing.read_ahead of every case (default: the tool's)",
    )
    p.add_argument("--repeat", type=int, default=1, help="rounds of every case, alternated")
    p.add_argument("--data", type=Path, default=HERE / "data")
    p.add_argument("--out", type=Path, default=HERE / "results" / "remote")
    p.add_argument("--name", default="bench_remote", help="file stem in --out")
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
    args = p.parse_args(argv)
    args.data = args.data.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    harness.exit_on_sigterm()
    env = harness.package_env(args.package_root.resolve())
    names = case_names(args.latencies, args.fail_share)
    runs: list[dict[str, Any]] = []
    identical: dict[tuple[str, str], bool] = {}
    for size, layers in args.stacks:
        ds = ensure_stacks(args.python, args.data, size, layers, [args.layout])[args.layout]
        work = args.data / "runs" / f"remote_{ds.key}"
        harness.warm_cache(ds.layer_dir.iterdir())
        with RangeServer(ds.layer_dir, seed=1, lifetime=args.timeout * len(names) * 2) as server:
            for round_ in range(args.repeat):
                for name in names:
                    output = work / name / "prediction.tif"
                    config = work / name / "config.yaml"
                    url = None
                    if name != "local":
                        latency, share = case_setting(name, args.fail_share)
                        server.set(latency=latency, fail_share=share)
                        url = server.url
                    write_config(config, ds, output, args.workers, url, args.read_ahead)
                    print(f"{ds.key} round {round_} {name:14s} ...", end=" ", flush=True)
                    before = server.stats
                    server.reset_peak()
                    res = harness.run_case(
                        Case(
                            name=name,
                            command=[args.python, "-m", "windowed_classify", str(config), "-q"],
                            run_dir=work / name,
                            report=output.with_suffix(".report.json"),
                            env=env,
                        ),
                        timeout=args.timeout,
                        poll=args.poll,
                        wait_idle_s=args.wait_idle,
                        repeat=round_,
                    )
                    after = server.stats
                    served = {k: after[k] - before[k] for k in after}
                    served["most_files"] = after["most_files"]  # a peak, not a count
                    harness.print_outcome(res)
                    runs.append(run_record(res, ds.key, round_, served))
        agreement = harness.compare_rasters({n: work / n / "prediction.tif" for n in names})
        local_medians = next(
            (r["medians"] for r in runs if (r["stack"], r["case"]) == (ds.key, "local")), None
        )
        for entry in agreement:
            if entry["a"] == "local":
                mine = [r for r in runs if (r["stack"], r["case"]) == (ds.key, entry["b"])]
                medians_ok = all(same_medians(r["medians"], local_medians) for r in mine)
                identical[(ds.key, entry["b"])] = bool(entry.get("identical")) and medians_ok
        identical[(ds.key, "local")] = True

    summary = summarize(runs, names, identical)
    print(f"\n{args.workers} workers, best of {args.repeat}, statistics cache off")
    harness.print_table(*table_rows(summary))
    doc = {
        "stacks": [f"{s}x{n}" for s, n in args.stacks],
        "latencies_ms": args.latencies,
        "fail_share": args.fail_share,
        "workers": args.workers,
        "read_ahead": args.read_ahead,
        "repeat": args.repeat,
        "machine": harness.machine_info(args.python, env, ("rasterio",)),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "summary": summary,
        "runs": runs,
    }
    stem = args.out / args.name
    harness.write_json(stem.with_suffix(".json"), doc)
    write_markdown(stem.with_suffix(".md"), doc)
    print(f"\nwrote {stem}.json and {stem.name}.md")
    ok = all(r["status"] == "ok" for r in runs)
    return 0 if ok and all(identical.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
