"""The size suite's summary: the aggregated table, ratios, memory flatness, the pyspatialml
comparison, and how they are printed, written to benchmark.md and plotted in memory.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cases import RUNNERS
from harness import (
    CONTENTION,
    CaseResult,
    fmt,
    last_line,
    load_line,
    machine_line,
    md_table,
    print_table,
    ratio,
    runs_of,
)
from plots import plot_peak_vs_pixels


def _key(r: CaseResult) -> tuple[int, str, str]:
    """(size, layout, runner) of one run."""
    return r.params["size"], r.params["layout"], r.case


def _agg(runs: list[CaseResult]) -> dict[tuple[int, str, str], dict[str, Any]]:
    """Per (size, layout, runner) over repeats: the fastest run's wall, CPU and other CPU;
    the smallest timed s; the largest peaks."""
    groups: dict[tuple[int, str, str], list[CaseResult]] = {}
    for r in runs:
        groups.setdefault(_key(r), []).append(r)
    out = {}
    for key, rs in groups.items():
        ok = [r for r in rs if r.status == "ok"]
        if not ok:
            out[key] = {
                "status": rs[-1].status,
                "error": rs[-1].error,
                "pixels": rs[-1].params["pixels"],
            }
            continue
        best = min(ok, key=lambda r: r.wall_s if r.wall_s is not None else float("inf"))
        out[key] = {
            "status": "ok",
            "pixels": best.params["pixels"],
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


def _pairs(runs: list[CaseResult], size: int, layout: str) -> list[dict[str, Any]]:
    """pyspatialml's wall time over the tool's in the same repeat (the runners of one
    repeat run back to back, so each pair saw about the same machine)."""
    by: dict[tuple[int, str], CaseResult] = {
        (r.repeat, r.case): r for r in runs if _key(r)[:2] == (size, layout) and r.status == "ok"
    }
    out = []
    for repeat in sorted({k[0] for k in by if k[1] == "pyspatialml"}):
        p = by[(repeat, "pyspatialml")]
        entry: dict[str, Any] = {"repeat": repeat, "pyspatialml_wall_s": p.wall_s}
        for tool in ("toolN", "tool1"):
            t = by.get((repeat, tool))
            entry[f"{tool}_wall_s"] = t.wall_s if t else None
            entry[f"pyspatialml_over_{tool}"] = ratio(p.wall_s, t.wall_s if t else None)
        out.append(entry)
    return out


def summarize(runs: list[CaseResult]) -> dict[str, Any]:
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
                    "tool1_over_floor": ratio(get("tool1", "wall_s"), floor),
                    "toolN_over_tool1": ratio(get("toolN", "wall_s"), get("tool1", "wall_s")),
                    "notebook_over_tool1": ratio(get("notebook", "wall_s"), get("tool1", "wall_s")),
                    "tool1_peak_over_notebook_peak": ratio(
                        get("tool1", "peak_rss_mb"), get("notebook", "peak_rss_mb")
                    ),
                    "toolN_peak_over_notebook_peak": ratio(
                        get("toolN", "peak_rss_mb"), get("notebook", "peak_rss_mb")
                    ),
                    "pyspatialml_over_toolN": ratio(
                        get("pyspatialml", "wall_s"), get("toolN", "wall_s")
                    ),
                    "pyspatialml_over_tool1": ratio(
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
                    "peak_ratio": ratio(v1["peak_rss_mb"], v0["peak_rss_mb"]),
                }
            )
    table = [
        {"size": k[0], "layout": k[1], "runner": k[2], **v}
        for k, v in sorted(
            agg.items(), key=lambda kv: (kv[0][0], layouts.index(kv[0][1]), RUNNERS.index(kv[0][2]))
        )
    ]
    return {"table": table, "ratios": ratios, "flatness": flatness}


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
                fmt(r.get("wall_s")),
                fmt(r.get("timed_s")),
                fmt(r.get("peak_rss_mb"), 0),
                fmt(r.get("max_process_rss_mb"), 0),
                fmt(r.get("max_processes")),
                fmt(r.get("cpu_s"), 1),
                fmt(r.get("other_cpu_s"), 1),
                r["status"]
                if r["status"] == "ok"
                else f"{r['status']}: {last_line(r.get('error'))}",
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


def print_summary(summary: dict[str, Any]) -> None:
    print_table(*table_rows(summary))
    for r in summary["ratios"]:
        print(
            f"{r['size']}^2 {r['layout']}: floor {fmt(r['floor_s'])} s, "
            f"tool1/floor {fmt(r['tool1_over_floor'])}, "
            f"toolN/tool1 {fmt(r['toolN_over_tool1'])}, "
            f"tool1 peak/notebook peak {fmt(r['tool1_peak_over_notebook_peak'], 3)}"
        )
        if r.get("pyspatialml_pairs"):
            pairs = ", ".join(f"{fmt(x['pyspatialml_over_toolN'])}" for x in r["pyspatialml_pairs"])
            print(
                f"{r['size']}^2 {r['layout']}: pyspatialml/toolN "
                f"{fmt(r['pyspatialml_over_toolN'])} (fastest of each), per repeat {pairs}; "
                f"pyspatialml/tool1 {fmt(r['pyspatialml_over_tool1'])}"
            )
    busy = contended(summary)
    if busy:
        print(
            f"warning: the machine was busy (other CPU > {CONTENTION:.0%} of a core) during "
            f"{len(busy)} measurement(s), e.g. {', '.join(busy[:3])}: times are unreliable"
        )


def render(doc: dict[str, Any]) -> str:
    """benchmark.md."""
    summary = doc["summary"]
    parts = [
        "# windowed_classify benchmark",
        "",
        f"{doc['finished']} on {machine_line(doc['machine'])} "
        f"{doc['args']['layers']} float32 LZW layers per stack; toolN = "
        f"{doc['args']['workers']} workers; processing.memory_mb = "
        f"{doc['args']['memory_mb'] or 'tool default'}.",
        "",
        "wall s: process wall time (start-up and imports included). timed s: the floors' "
        "timed section (what the floor ratio uses), the tool's own report total, the "
        "notebook's own total. peak RSS MB: peak summed RSS of the process tree (psutil, "
        f"every {doc['args']['poll']} s), never below max 1-proc MB (wait4 ru_maxrss).",
        "",
        md_table(*table_rows(summary)),
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
            fmt(r["floor_s"]),
            fmt(r["tool1_over_floor"]),
            fmt(r["toolN_over_tool1"]),
            fmt(r["notebook_over_tool1"]),
            fmt(r["tool1_peak_over_notebook_peak"], 3),
            fmt(r["toolN_peak_over_notebook_peak"], 3),
        ]
        for r in summary["ratios"]
    ]
    parts += [
        md_table(head, rows),
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
            fmt(f["pixel_ratio"]),
            fmt(f["peak_ratio"], 3),
        ]
        for f in summary["flatness"]
    ]
    parts += [md_table(head, rows), ""]
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
                fmt(a.get("differing")),
                a.get("error")
                or (json.dumps(a["profile_differs"]) if "profile_differs" in a else ""),
            ]
            for a in doc["agreement"]
        ]
        parts += [md_table(head, rows), ""]
    return "\n".join(parts)


def _pyspatialml_section(doc: dict[str, Any]) -> list[str]:
    """Ratios to pyspatialml's Raster.predict and every run's machine load."""
    ratios = [r for r in doc["summary"]["ratios"] if r.get("pyspatialml_pairs")]
    if not ratios:
        return []
    pysp = [r for r in doc["runs"] if r["case"] == "pyspatialml" and r["status"] == "ok"]
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
                *(fmt(agg.get(k, {}).get("wall_s")) for k in ("pyspatialml", "toolN", "tool1")),
                fmt(r["pyspatialml_over_toolN"]),
                fmt(r["pyspatialml_over_tool1"]),
            ]
        )
        for x in r["pyspatialml_pairs"] if len(r["pyspatialml_pairs"]) > 1 else []:
            rows.append(
                [
                    f"{r['size']}^2",
                    r["layout"],
                    f"repeat {x['repeat'] + 1}",
                    fmt(x["pyspatialml_wall_s"]),
                    fmt(x["toolN_wall_s"]),
                    fmt(x["tool1_wall_s"]),
                    fmt(x["pyspatialml_over_toolN"]),
                    fmt(x["pyspatialml_over_tool1"]),
                ]
            )
    parts += [md_table(head, rows), ""]
    parts += [
        "Machine load of every run: load average (1/5/15 min) just before it started, and "
        "the CPU the rest of the machine used while it ran.",
        "",
    ]
    head = ["size", "layout", "runner", "repeat", "wall s", "peak RSS MB", "load avg"]
    head += ["other CPU s", "waited idle s"]
    rows = [
        [
            f"{r.params['size']}^2",
            r.params["layout"],
            r.case,
            str(r.repeat + 1),
            fmt(r.wall_s),
            fmt(r.peak_rss_mb, 0),
            load_line(r),
            fmt(r.other_cpu_s, 1),
            fmt(r.waited_idle_s, 0),
        ]
        for r in runs_of(doc)
        if r.status == "ok"
    ]
    return [*parts, md_table(head, rows), ""]


def write_plot(path: Path, summary: dict[str, Any], layers: int) -> None:
    series: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for r in summary["table"]:
        if r["status"] == "ok":
            series.setdefault((r["runner"], r["layout"]), []).append(
                (r["pixels"], r["peak_rss_mb"])
            )
    plot_peak_vs_pixels(path, series, RUNNERS, layers)
