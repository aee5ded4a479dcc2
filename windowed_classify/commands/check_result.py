"""What ``check`` found, and how it reads: as the text ``check`` prints, or as the JSON
document ``check --json`` prints (its schema: docs/check.md)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._version import __version__
from ..config import Config, as_document
from ..inputs.grid import Grid, crs_text
from ..models.legend import Legend
from ..models.schema import Schema
from ..prepare import Plan

LIBRARIES_MB = 200  # interpreter + numpy, pandas, scikit-learn, rasterio (measured)
PROCESS_WORKER_MB = 300  # each worker process of engine: processes (measured)
JSON_FORMAT = 1  # the version of check --json's document


@dataclass
class LayerInfo:
    """One layer (a band of a raster) of the inputs, as a run would see it."""

    name: str
    path: Path | str
    band: int  # 1-based band of a multi-band file; 0 for a single-band file
    dtype: str
    block_shape: tuple[int, int]
    file_nodata: float | None
    nodata_values: tuple[float, ...]  # the float32 values that mean nodata (NaN/inf always do)
    model_position: int | None  # index in the model's features; None: ignored by the model
    status: str = ""  # why a run cannot use it ("not on the grid", "cannot open"); "" when fine
    warped: str | None = None  # rasters.align: read warped onto the grid with this resampling
    min: float | None = None
    max: float | None = None
    range_source: str = ""  # "statistics cache", "overview 1/8", "sample 3.1%", ...
    sampled_pixels: int = 0
    sampled_nodata: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class OutputLine:
    """One raster a run would write, and why the model cannot give it (None: it can)."""

    key: str
    path: str
    what: str
    bands: int
    dtype: str
    nodata: str
    reason: str | None = None

    @property
    def status(self) -> str:
        return "ok" if self.reason is None else f"NOT SUPPORTED: {self.reason}"


@dataclass
class Spill:
    """What the run writes beside the output while it runs (removed at the end): the keys
    near each median it counts, and the rows that wait for a median fill (passes/spill.py)."""

    pass1: str  # how the statistics will be had: cache, fused, deferred or separate
    counted: int  # layers whose statistics are counted (not in the cache)
    statistics_mb: float
    rows_mb: float
    fill_share: float | None  # pixels that need a median fill (None: not known)
    fill_source: str  # where fill_share comes from: "sample", or "at most" (a bound)
    on_workers: bool  # on the workers' own disks (an engine that pins work), not the output's

    @property
    def where(self) -> str:
        return "on the Dask workers' own disks" if self.on_workers else "beside the output"

    @property
    def total_mb(self) -> float:
        return self.statistics_mb + self.rows_mb

    @property
    def reads(self) -> int:
        """How many times the run reads the stack."""
        return 2 if self.pass1 == "separate" else 1


@dataclass
class Unreachable:
    """A remote file that cannot be opened, and what its server answers a HEAD."""

    path: str
    status: int  # 0: no answer
    reason: str  # "HTTP 404 Not Found", or why there was no answer


@dataclass
class RemoteHost:
    """One host of remote layers: the measured time of a header request, and what the run
    will ask of it (None where the run's windows are not known: an incomplete config)."""

    host: str
    files: int  # the model's files on it
    latency_ms: float | None  # a header request on an open connection (None: no answer)
    status: int  # the answer to that request (0: none)
    error: str  # why there was no answer
    unreachable: list[Unreachable] = field(default_factory=list)
    requests: int | None = None  # for the whole run
    requests_per_window: float | None = None  # every file of the host, a window on average
    read_seconds: float | None = None  # waiting for it, reading one file after another
    read_ahead_seconds: float | None = None  # ... with processing.read_ahead


@dataclass
class Remote:
    read_ahead: int  # processing.read_ahead
    hosts: list[RemoteHost]


@dataclass
class Estimate:
    windows: int
    window_shape: tuple[int, int]  # (rows, cols) of the largest window
    workers: int
    engine: str
    memory_mb: int  # processing.memory_mb
    peak_mb: int  # estimated peak of the whole run, workers included
    model_mb: float
    outputs_mb: dict[str, float]  # path -> uncompressed size
    free_mb: float | None  # free space where the outputs go
    spill: Spill | None = None


@dataclass
class CheckResult:
    """What ``check`` found; ``ok`` when a run would start."""

    plan: Plan
    layers: list[LayerInfo] = field(default_factory=list)  # discovery order
    outputs: list[OutputLine] = field(default_factory=list)  # every raster a run writes
    estimate: Estimate | None = None
    remote: Remote | None = None  # None: no remote layer

    @property
    def config(self) -> Config:
        return self.plan.config

    @property
    def ok(self) -> bool:
        return self.plan.ok

    @property
    def problems(self) -> list[str]:
        return [str(e) for e in self.plan.problems]

    @property
    def warnings(self) -> list[str]:
        return self.plan.warnings

    @property
    def grid(self) -> Grid | None:
        return self.plan.grid

    @property
    def schema(self) -> Schema | None:
        return self.plan.schema

    @property
    def legend(self) -> Legend | None:
        return self.plan.legend

    @property
    def task(self) -> str | None:
        if self.plan.config.model is None:
            return None
        return f"{self.plan.task} ({self.plan.task_source})"

    def render(self) -> str:
        return render(self)

    def document(self) -> dict[str, Any]:
        return document(self)


# ----------------------------------------------------------------------------- text


def _table(headers: Sequence[str] | None, rows: Sequence[Sequence[Any]], indent: str = "  ") -> str:
    """Left-aligned columns; a header row underlined with dashes when ``headers`` is given."""
    cells = ([[str(h) for h in headers]] if headers else []) + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    lines = []
    for j, row in enumerate(cells):
        lines.append(indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if j == 0 and headers:
            lines.append(indent + "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _num(v: float | None, digits: int = 7) -> str:
    return "-" if v is None else f"{v:.{digits}g}"


def render(r: CheckResult) -> str:
    cfg, plan = r.config, r.plan
    out: list[str] = [f"config: {cfg.source or '(mapping)'}"]
    if r.grid is not None:
        g, tf = r.grid, r.grid.transform
        out.append(
            f"grid: {g.width} x {g.height} pixels ({g.pixels:,}), CRS {crs_text(g.crs)}, "
            f"pixel {abs(tf.a):g} x {abs(tf.e):g}, origin ({tf.c:g}, {tf.f:g})"
        )
        assert plan.reference is not None
        out.append(f"  ({plan.reference.what})")
    out.append(f"\nlayers: {len(r.layers)} found {cfg.rasters.where}")
    if r.layers:
        rows = []
        for i, la in enumerate(r.layers, 1):
            rows.append(
                [
                    i,
                    la.name,
                    _rel(la.path, cfg.rasters.folder),
                    la.band or "-",
                    la.dtype,
                    f"{la.block_shape[0]}x{la.block_shape[1]}",
                    _num(la.file_nodata, 9),
                    ", ".join(_num(v, 9) for v in la.nodata_values) or "-",
                    "-" if la.model_position is None else la.model_position + 1,
                    _status(la),
                ]
            )
        headers = ["#", "layer", "file", "band", "dtype", "block", "file nodata"]
        headers += ["nodata values", "model #", "status"]
        out.append(_table(headers, rows))
    if r.schema is not None:
        out.append(f"\nmodel features: {len(r.schema.features)}, from {r.schema.source}")
        by_name = {la.name: (i, la) for i, la in enumerate(r.layers, 1)}
        rows = []
        for i, f in enumerate(r.schema.features, 1):
            hit = by_name.get(f)
            status = "MISSING" if hit is None else _status(hit[1])
            layer_no = "-" if hit is None else hit[0]
            rows.append([i, f, r.schema.dtypes.get(f, "-"), layer_no, status])
        for name in plan.ignored:
            rows.append(["-", name, "-", by_name[name][0] if name in by_name else "-", "extra"])
        out.append(_table(["model #", "feature", "trained as", "layer #", "status"], rows))
        order = [by_name[f][0] for f in r.schema.features if f in by_name]
        if order != sorted(order):
            out.append(
                "  (the model's order differs from the files' order: columns are matched by name)"
            )
    if r.task is not None:
        out.append(f"\ntask: {r.task}")
    if r.outputs:
        out.append(f"\noutputs: {len(r.outputs)}")
        rows = [
            [ln.key, ln.what, ln.bands, ln.dtype, ln.nodata, _supported(ln)] for ln in r.outputs
        ]
        out.append(_table(["output", "what", "bands", "dtype", "nodata", "status"], rows))
    if plan.aoa is not None:
        summary = plan.aoa.summary()
        dropped = summary["training_rows_dropped"]
        out.append(
            f"  AOA training table: {summary['training_rows_used']} usable training row(s)"
            + (f", {dropped} dropped" if dropped else "")
            + f"; folds {summary['folds']}; threshold {summary['threshold']:.6g}"
        )
    if r.legend is not None and plan.task != "regression":
        out.append(f"\nclasses: {len(r.legend.labels)}, from {r.legend.source}")
        pairs = zip(r.legend.output_codes, r.legend.labels, strict=True)
        rows = [[c, repr(label)] for c, label in pairs]
        if cfg.output is not None:
            rows.append([_num(cfg.output.nodata), "(masked pixels: output.nodata)"])
        out.append(_table(["code", "label"], rows))
    ranged = [la for la in r.layers if la.range_source]
    if ranged:
        t = cfg.nodata.threshold
        out.append(
            f"\nvalue ranges (valid values; nodata.threshold {t}: a pixel is masked when more "
            f"than {t} of its layers are nodata)"
        )
        rows = [
            [
                la.name,
                _num(la.min),
                _num(la.max),
                la.range_source,
                f"{100 * la.sampled_nodata / la.sampled_pixels:.3g}%" if la.sampled_pixels else "-",
            ]
            for la in ranged
        ]
        out.append(_table(["layer", "min", "max", "from", "nodata"], rows))
    if r.estimate is not None:
        e = r.estimate
        out.append("\nestimates")
        rows = [
            ["windows", f"{e.windows:,} of up to {e.window_shape[0]} x {e.window_shape[1]} pixels"],
            ["workers", f"{e.workers} ({e.engine})"],
            [
                "peak memory",
                f"about {e.peak_mb:,} MB at most (libraries ~{LIBRARIES_MB} MB + "
                f"processing.memory_mb {e.memory_mb} + model {e.model_mb:.0f} MB"
                + (", + a process per worker" if e.engine == "processes" else "")
                + ")",
            ],
        ]
        for path, mb in e.outputs_mb.items():
            rows.append(["output", f"{path}: at most {mb:,.1f} MB uncompressed"])
        if e.spill is not None:
            rows += _spill_rows(e.spill)
        if e.free_mb is not None:
            rows.append(["free space", f"{e.free_mb:,.0f} MB"])
        out.append(_table(None, rows))
    if r.remote is not None:
        out += _remote_lines(r.remote, r.estimate)
    if r.warnings:
        out.append("")
        out += [f"WARNING: {w}" for w in r.warnings]
    out.append("")
    if r.ok:
        out.append("OK: the run would start.")
    else:
        out.append(f"NOT READY: {len(r.problems)} problem(s) would stop the run:")
        out += [f"  - {p}" for p in r.problems]
    return "\n".join(out)


PASS1_TEXT = {
    "cache": "from the statistics cache: one read of the stack",
    "fused": "counted in pass 2's read: one read of the stack",
    "deferred": "counted in pass 2's read, the rows that need a fill predicted after: one read",
    "separate": "counted apart first: two reads of the stack",
}


def _spill_rows(sp: Spill) -> list[list[object]]:
    rows: list[list[object]] = [
        ["statistics", f"{PASS1_TEXT[sp.pass1]} (report: pass1 {sp.pass1})"]
    ]
    if sp.pass1 == "cache":
        return rows
    rows.append(
        [
            "spill",
            f"about {_mb(sp.total_mb)} written {sp.where} while it runs (removed at the end): "
            f"{_mb(sp.statistics_mb)} of keys near the medians of {sp.counted} layer(s), "
            f"{_mb(sp.rows_mb)} of rows waiting for a median fill",
        ]
    )
    if sp.fill_share is not None:
        how = "in the sample" if sp.fill_source == "sample" else "at most (not known)"
        rows.append(["to fill", f"{100 * sp.fill_share:.3g}% of the pixels, {how}"])
    return rows


def _mb(v: float) -> str:
    return f"{v:,.1f} MB" if v < 10 else f"{v:,.0f} MB"


def _seconds(v: float | None) -> str:
    return "-" if v is None else f"{v:,.1f} s"


def _remote_lines(rm: Remote, est: Estimate | None) -> list[str]:
    reads = est.spill.reads if est is not None and est.spill is not None else 1
    out = [
        f"\nremote layers (processing.read_ahead {rm.read_ahead}; the run reads the stack "
        f"{'once' if reads == 1 else 'twice'}; network waits, not bandwidth)"
    ]
    rows = []
    for h in rm.hosts:
        latency = f"{h.latency_ms:,.0f} ms" if h.latency_ms is not None else "no answer"
        if h.status >= 400:
            latency += f" (HTTP {h.status})"
        rows.append(
            [
                h.host,
                h.files,
                latency,
                "-" if h.requests is None else f"{h.requests:,}",
                "-" if h.requests_per_window is None else f"{h.requests_per_window:,.3g}",
                _seconds(h.read_seconds),
                _seconds(h.read_ahead_seconds),
            ]
        )
    head = ["host", "files", "header request", "requests", "a window", "one by one"]
    out.append(_table([*head, "read-ahead"], rows))
    for h in rm.hosts:
        out += [f"  cannot open {u.path}: {u.reason}" for u in h.unreachable]
    return out


def _supported(line: OutputLine) -> str:
    return "ok" if line.reason is None else "NOT SUPPORTED (see below)"


def _status(la: LayerInfo) -> str:
    if la.status.startswith("unused"):
        return la.status  # not a problem: a run never reads it
    if la.status:
        return la.status.upper()
    return f"ok, warped ({la.warped})" if la.warped else "ok"


def _rel(path: Path | str, folder: Path | None) -> str:
    if isinstance(path, Path) and folder is not None and path.is_relative_to(folder):
        return path.relative_to(folder).as_posix()
    return str(path)


# ----------------------------------------------------------------------------- JSON


def _number(value: float | None) -> float | str | None:
    """A float for JSON: NaN and infinities as text, which JSON cannot hold."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _grid(plan: Plan) -> dict[str, Any] | None:
    ref = plan.reference
    if ref is None:
        return None
    g = ref.grid
    crs = g.crs
    return {
        "crs": crs_text(crs) if crs else None,
        "crs_wkt": crs.to_wkt() if crs else None,
        "transform": list(g.transform)[:6],
        "width": g.width,
        "height": g.height,
        "pixels": g.pixels,
        "chosen_as": ref.what,
    }


def document(r: CheckResult) -> dict[str, Any]:
    """``check --json``: the same findings as the text, as one JSON-ready document."""
    plan, cfg = r.plan, r.config
    model = None
    if cfg.model is not None:
        legend = plan.legend if plan.task != "regression" else None
        model = {
            "path": str(cfg.model.path),
            "loaded": plan.model is not None,
            "task": plan.task,
            "task_source": plan.task_source,
            "features": list(plan.schema.features) if plan.schema else None,
            "features_source": plan.schema.source if plan.schema else None,
            "feature_order_from_names": not plan.schema.trusted if plan.schema else None,
            "missing_features": plan.missing,
            "ignored_layers": list(plan.ignored),
            "classes": None
            if legend is None
            else [
                {"code": c, "label": label}
                for c, label in zip(legend.output_codes, legend.labels, strict=True)
            ],
            "classes_source": legend.source if legend is not None else None,
        }
    return {
        "tool": "windowed_classify",
        "version": __version__,
        "format": JSON_FORMAT,
        "ok": r.ok,
        "config_file": str(cfg.source) if cfg.source else None,
        "config": as_document(cfg),
        "grid": _grid(plan),
        "layers": [
            {
                "name": la.name,
                "file": str(la.path),
                "band": la.band or 1,
                "dtype": la.dtype,
                "block": list(la.block_shape),
                "file_nodata": _number(la.file_nodata),
                "nodata_values": [_number(v) for v in la.nodata_values],
                "model_position": la.model_position,
                "status": _status(la).lower(),
                "resampling": la.warped,
                "min": _number(la.min),
                "max": _number(la.max),
                "range_source": la.range_source or None,
                "sampled_pixels": la.sampled_pixels,
                "sampled_nodata": la.sampled_nodata,
            }
            for la in r.layers
        ],
        "model": model,
        "outputs": [
            {
                "key": ln.key,
                "path": ln.path,
                "what": ln.what,
                "bands": ln.bands,
                "dtype": ln.dtype,
                "nodata": _number(float(ln.nodata)),
                "supported": ln.reason is None,
                "reason": ln.reason,
                "size_mb": r.estimate.outputs_mb.get(ln.path) if r.estimate else None,
            }
            for ln in r.outputs
        ],
        "aoa": plan.aoa.summary() if plan.aoa is not None else None,
        "estimate": None
        if r.estimate is None
        else {
            "windows": r.estimate.windows,
            "window_shape": list(r.estimate.window_shape),
            "workers": r.estimate.workers,
            "engine": r.estimate.engine,
            "memory_mb": r.estimate.memory_mb,
            "peak_mb": r.estimate.peak_mb,
            "model_mb": round(r.estimate.model_mb, 3),
            "free_mb": r.estimate.free_mb,
            "spill": _spill_document(r.estimate.spill),
        },
        "remote": _remote_document(r.remote),
        "problems": r.problems,
        "warnings": r.warnings,
    }


def _spill_document(sp: Spill | None) -> dict[str, Any] | None:
    if sp is None:
        return None
    return {
        "pass1": sp.pass1,
        "reads": sp.reads,
        "counted_layers": sp.counted,
        "statistics_mb": round(sp.statistics_mb, 3),
        "rows_mb": round(sp.rows_mb, 3),
        "total_mb": round(sp.total_mb, 3),
        "fill_share": None if sp.fill_share is None else round(sp.fill_share, 6),
        "fill_source": sp.fill_source or None,
        "where": sp.where,
    }


def _remote_document(rm: Remote | None) -> dict[str, Any] | None:
    if rm is None:
        return None

    def rounded(v: float | None, digits: int = 3) -> float | None:
        return None if v is None else round(v, digits)

    return {
        "read_ahead": rm.read_ahead,
        "hosts": [
            {
                "host": h.host,
                "files": h.files,
                "latency_ms": rounded(h.latency_ms),
                "status": h.status or None,
                "error": h.error or None,
                "requests": h.requests,
                "requests_per_window": rounded(h.requests_per_window),
                "read_seconds": rounded(h.read_seconds),
                "read_ahead_seconds": rounded(h.read_ahead_seconds),
                "unreachable": [
                    {"path": u.path, "status": u.status or None, "reason": u.reason}
                    for u in h.unreachable
                ],
            }
            for h in rm.hosts
        ],
    }
