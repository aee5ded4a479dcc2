"""What ``check`` found, and how it reads: the layers, the model, the outputs, estimates and
every problem, rendered as the report ``check`` prints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Config
from ..inputs.grid import Grid
from ..models.legend import Legend
from ..models.schema import Schema
from .check_outputs import OutputLine

LIBRARIES_MB = 200  # interpreter + numpy, pandas, scikit-learn, rasterio (measured, README)
PROCESS_WORKER_MB = 300  # each worker process of engine: processes (measured, README)


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


@dataclass
class CheckResult:
    """What ``check`` found; ``ok`` when a run would start."""

    config: Config
    grid: Grid | None = None
    layers: list[LayerInfo] = field(default_factory=list)  # discovery order
    schema: Schema | None = None
    legend: Legend | None = None
    missing: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    estimate: Estimate | None = None
    task: str | None = None  # how the model's task was decided
    outputs: list[OutputLine] = field(default_factory=list)  # every raster a run writes
    aoa: str | None = None  # the AOA's training table as a run reads it
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        return render(self)


# ----------------------------------------------------------------------------- rendering


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


def _crs(grid: Grid) -> str:
    crs: Any = grid.crs
    return crs.to_string() if crs else "none"


def render(r: CheckResult) -> str:
    cfg = r.config
    out: list[str] = [f"config: {cfg.source or '(mapping)'}"]
    if r.grid is not None:
        g, t = r.grid, r.grid.transform
        out.append(
            f"grid: {g.width} x {g.height} pixels ({g.pixels:,}), CRS {_crs(g)}, "
            f"pixel {abs(t.a):g} x {abs(t.e):g}, origin ({t.c:g}, {t.f:g})"
        )
    where = f"under {cfg.rasters.folder}" if cfg.rasters.folder else "in rasters.files"
    out.append(f"\nlayers: {len(r.layers)} found {where}")
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
        out.append(
            _table(
                [
                    "#",
                    "layer",
                    "file",
                    "band",
                    "dtype",
                    "block",
                    "file nodata",
                    "nodata values",
                    "model #",
                    "status",
                ],
                rows,
            )
        )
    if r.schema is not None:
        out.append(f"\nmodel features: {len(r.schema.features)}, from {r.schema.source}")
        by_name = {la.name: (i, la) for i, la in enumerate(r.layers, 1)}
        rows = []
        for i, f in enumerate(r.schema.features, 1):
            hit = by_name.get(f)
            status = "MISSING" if hit is None else _status(hit[1])
            layer_no = "-" if hit is None else hit[0]
            rows.append([i, f, r.schema.dtypes.get(f, "-"), layer_no, status])
        for name in r.ignored:
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
            [
                ln.key,
                ln.kind,
                ln.bands,
                ln.dtype,
                ln.nodata,
                "ok" if ln.status == "ok" else "NOT SUPPORTED (see below)",
            ]
            for ln in r.outputs
        ]
        out.append(_table(["output", "what", "bands", "dtype", "nodata", "status"], rows))
    if r.aoa is not None:
        out.append(f"  AOA training table {r.aoa}")
    if r.legend is not None:
        out.append(f"\nclasses: {len(r.legend.labels)}, from {r.legend.source}")
        pairs = zip(r.legend.output_codes, r.legend.labels, strict=True)
        rows = [[c, repr(label)] for c, label in pairs]
        rows.append([cfg.output.nodata, "(masked pixels: output.nodata)"])
        out.append(_table(["code", "label"], rows))
    ranged = [la for la in r.layers if la.range_source]
    if ranged:
        out.append(
            f"\nvalue ranges (valid values; nodata.threshold {cfg.nodata.threshold}: a pixel is "
            f"masked when more than {cfg.nodata.threshold} of its layers are nodata)"
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
        if e.free_mb is not None:
            rows.append(["free space", f"{e.free_mb:,.0f} MB"])
        out.append(_table(None, rows))
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
