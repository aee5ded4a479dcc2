"""``assess``: the accuracy of a class map and the area of its classes, with their
uncertainty, from reference labels at the points of a stratified random sample.

POINTS are read as ``sample`` reads them (CSV, GeoPackage, shapefile; ``--layer``,
``--points-crs``). A point's map class (and stratum) are the rasters' codes at its pixel;
points outside the map or on nodata are reported and excluded. The map is streamed once to
count its pixels and their area per class and stratum (pixel areas from its CRS). Strata =
map classes (no ``--strata``): Olofsson et al. (2014); other strata: Stehman (2014). The
design sidecar ``<points>.design.json`` that ``design`` wrote is read when it is there: its
strata raster is used when ``--strata`` is not given, and its stratum sizes are compared with
the map's.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..accuracy import report
from ..accuracy.estimators import Accuracy, StratumError, olofsson, stehman
from ..errors import InputError, OutputError
from ..inputs.pixels import on_grid, pixel_of
from ..inputs.points import read_points, split_layer
from ..outputs.atomic import write_json_atomic, write_text_atomic
from .classmap import ClassRaster, check_same_grid, codes_at, open_class_raster, pixel_areas, tally
from .design import design_path

log = logging.getLogger(__name__)

SHOWN = 20  # rows named in a message


@dataclass
class AssessResult:
    output: Path
    markdown: Path
    table: Path
    document: dict[str, Any]

    def summary(self) -> str:
        return report.summary(
            self.document, [str(self.output), str(self.markdown), str(self.table)]
        )


def output_paths(out: Path) -> tuple[Path, Path, Path]:
    """OUT.json and, beside it, the Markdown and CSV tables (OUT.md, OUT.csv)."""
    return out, out.with_suffix(".md"), out.with_suffix(".csv")


def assess(
    map_path: str | Path,
    points: str | Path,
    out: str | Path | None = None,
    *,
    reference: str,
    strata: str | Path | None = None,
    layer: str | None = None,
    points_crs: str | None = None,
    design: str | Path | None = None,
    overwrite: bool = False,
) -> AssessResult:
    """Estimate accuracy and area; write OUT.json, OUT.md and OUT.csv."""
    points_file, layer = split_layer(Path(points), layer)
    out = (
        Path(out) if out is not None else points_file.with_name(f"{points_file.stem}.accuracy.json")
    )
    paths = output_paths(out)
    for path in paths:
        if path.exists() and path.resolve() in (points_file.resolve(), Path(map_path).resolve()):
            raise OutputError(f"the output {path} is an input; choose another -o")
        if path.exists() and not overwrite:
            raise OutputError(f"output {path} already exists; pass --overwrite to replace it")

    classes = open_class_raster(map_path, "map")
    plan = _read_design(
        Path(design) if design is not None else design_path(points_file), design is not None
    )
    if strata is None and plan and plan.get("strata_raster"):
        strata = plan["strata_raster"]
        log.info("strata raster %s, from the design %s", strata, plan["_path"])
    elif strata is not None and plan and not plan.get("strata_raster"):
        log.warning(
            "the design %s stratified by the map's classes, but --strata %s is given: the "
            "estimates assume the sample was stratified by %s",
            plan["_path"],
            strata,
            strata,
        )
    layer_raster = open_class_raster(strata, "strata raster") if strata is not None else None
    if layer_raster is not None:
        check_same_grid(classes, layer_raster)

    table = read_points(
        points_file,
        classes.grid,
        layer=layer,
        points_crs=points_crs,
        strict=True,
        accept_polygons=False,
    )
    frame = table.frame
    if reference not in frame.columns:
        raise InputError(
            f"points file {table.where} has no column {reference!r} (--reference); its columns: "
            + ", ".join(map(str, frame.columns))
        )
    rows, cols = pixel_of(classes.grid, table.xs, table.ys)
    map_codes, map_ok = codes_at(classes, rows, cols)
    on_map = on_grid(classes.grid, rows, cols)
    strata_codes, strata_ok = map_codes, map_ok
    if layer_raster is not None:
        strata_codes, strata_ok = codes_at(layer_raster, rows, cols)
    reasons = np.full(len(rows), "", dtype=object)
    reasons[~strata_ok] = "on nodata in the strata raster"
    reasons[~map_ok] = "on nodata in the map"
    reasons[~on_map] = "outside the map"
    keep = reasons == ""
    excluded = _excluded(reasons, table.where)

    areas = pixel_areas(classes)
    counted = tally(classes, layer_raster, areas)
    class_pixels, class_area = counted.by_class()
    codes = sorted(set(classes.names) | set(class_pixels))
    names = [classes.name(c) for c in codes]
    _check_names(names, codes, classes)
    labels = _labels(frame[reference], keep, reference, table.where)
    index = {name: k for k, name in enumerate(names)}
    unknown = sorted({v for v in labels[keep] if v not in index})
    if unknown:
        raise InputError(
            f"points file {table.where}, column {reference!r}: "
            + ", ".join(map(repr, unknown[:SHOWN]))
            + (" are not classes" if len(unknown) > 1 else " is not a class")
            + f" of the map {classes.path} (its classes: {', '.join(names)})"
        )
    code_index = {c: k for k, c in enumerate(codes)}
    m = np.array([code_index[int(c)] for c in map_codes[keep]], dtype=np.int64)
    r = np.array([index[v] for v in labels[keep]], dtype=np.int64)
    _compare_map_column(frame, keep, m, names, table.where)

    if layer_raster is None:
        stratum_codes = codes
        stratum_names = names
        s_pixels = [class_pixels.get(c, 0) for c in codes]
        s_area = [class_area.get(c, 0.0) for c in codes]
    else:
        stratum_pixels, stratum_area = counted.by_stratum()
        stratum_codes = sorted(stratum_pixels)
        stratum_names = [layer_raster.name(c) for c in stratum_codes]
        s_pixels = [stratum_pixels[c] for c in stratum_codes]
        s_area = [stratum_area[c] for c in stratum_codes]
    sizes = np.asarray(s_area if areas.known else s_pixels, dtype=np.float64)
    s_index = {c: k for k, c in enumerate(stratum_codes)}
    h = np.array([s_index[int(c)] for c in strata_codes[keep]], dtype=np.int64)
    try:
        if layer_raster is None:
            counts = np.zeros((len(codes), len(codes)), dtype=np.int64)
            np.add.at(counts, (m, r), 1)
            acc: Accuracy = olofsson(counts, sizes)
        else:
            acc = stehman(h, m, r, sizes, len(codes), population=s_pixels)
    except StratumError as exc:
        name = stratum_names[exc.stratum]
        kind = "map class" if layer_raster is None else "stratum"
        raise InputError(
            f"{kind} {name!r} has {exc.units} sample unit(s) in {table.where}: at least 2 are "
            "needed (the variance of its estimates is undefined otherwise); label more points in "
            "it"
        ) from None

    units = np.bincount(h, minlength=len(stratum_codes))
    if plan:
        _compare_design(plan, stratum_names, s_pixels)
    total_ha = float(sum(s_area)) / 1e4 if areas.known else None
    design_doc = {
        "strata_raster": None if layer_raster is None else str(layer_raster.path),
        "strata": {
            name: {
                "pixels": int(p),
                "area_ha": (a / 1e4) if areas.known else None,
                "sample_size": int(n),
            }
            for name, p, a, n in zip(stratum_names, s_pixels, s_area, units, strict=True)
        },
        "sample_size": int(len(m)),
        "total_pixels": int(sum(s_pixels)),
        "total_ha": total_ha,
        "pixel_area": areas.how,
        "finite_population_correction": layer_raster is not None,
        "sidecar": plan.get("_path") if plan else None,
        "seed": plan.get("seed") if plan else None,
    }
    doc = report.document(
        acc,
        names,
        [class_pixels.get(c, 0) for c in codes],
        [class_area.get(c, 0.0) / 1e4 if areas.known else None for c in codes],
        total_ha,
        design_doc,
        excluded,
        {
            "map": str(classes.path),
            "points": table.where,
            "reference_column": reference,
            "class_codes": {name: int(c) for name, c in zip(names, codes, strict=True)},
        },
    )
    _write(paths, doc)
    return AssessResult(*paths, doc)


def _read_design(path: Path, required: bool) -> dict[str, Any]:
    if not path.is_file():
        if required:
            raise InputError(f"design file not found: {path}")
        return {}
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the design {path}: {exc}") from None
    if not isinstance(plan, dict) or "strata" not in plan:
        raise InputError(f"{path} is not a design written by `design` (no 'strata')")
    plan["_path"] = str(path)
    return plan


def _compare_design(plan: dict[str, Any], names: list[str], pixels: list[int]) -> None:
    planned = {str(s.get("name")): int(s.get("pixels", 0)) for s in plan.get("strata", [])}
    now = dict(zip(names, (int(p) for p in pixels), strict=True))
    if planned != now:
        differ = sorted(k for k in set(planned) | set(now) if planned.get(k) != now.get(k))
        log.warning(
            "the strata differ from the design %s (%s): has the map changed since the sample "
            "was drawn? The estimates use the strata as they are now",
            plan["_path"],
            ", ".join(f"{k}: {planned.get(k, 0)} -> {now.get(k, 0)} px" for k in differ[:SHOWN]),
        )


def _excluded(reasons: np.ndarray, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {"count": int((reasons != "").sum()), "reasons": {}, "rows": {}}
    for why in ("outside the map", "on nodata in the map", "on nodata in the strata raster"):
        rows = [int(i) + 1 for i in np.flatnonzero(reasons == why)]
        if rows:
            out["reasons"][why] = len(rows)
            out["rows"][why] = rows
            shown = ", ".join(map(str, rows[:SHOWN])) + (", ..." if len(rows) > SHOWN else "")
            log.warning(
                "%d point(s) of %s lie %s and are excluded (rows %s)", len(rows), where, why, shown
            )
    return out


def _check_names(names: list[str], codes: list[int], classes: ClassRaster) -> None:
    seen: dict[str, int] = {}
    for name, code in zip(names, codes, strict=True):
        if name in seen:
            raise InputError(
                f"the map {classes.path}: class {name!r} is both code {seen[name]} (by its "
                f"legend) and code {code} (unnamed): name every class in the legend"
            )
        seen[name] = code


def _labels(column: pd.Series, keep: np.ndarray, name: str, where: str) -> np.ndarray:
    """Reference labels as text (a number read as 3.0 is '3'); empty cells of kept points are
    an error naming them."""
    out = np.array([_text(v) for v in column], dtype=object)
    empty = np.flatnonzero(keep & (out == ""))
    if empty.size:
        shown = ", ".join(str(i + 1) for i in empty[:SHOWN]) + (
            ", ..." if empty.size > SHOWN else ""
        )
        raise InputError(
            f"points file {where}: {empty.size} row(s) have no reference label in column "
            f"{name!r} (rows {shown}); label them, or delete them"
        )
    return out


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    if isinstance(value, (np.integer, int)):
        return str(int(value))
    return str(value).strip()


def _compare_map_column(
    frame: pd.DataFrame, keep: np.ndarray, m: np.ndarray, names: list[str], where: str
) -> None:
    if "map_class" not in frame.columns:
        return
    written = np.array([_text(v) for v in frame["map_class"]], dtype=object)[keep]
    now = np.array([names[k] for k in m], dtype=object)
    differ = np.flatnonzero((written != "") & (written != now))
    if differ.size:
        log.warning(
            "%d point(s) of %s have a map_class other than the map's class at their pixel: the "
            "map's is used (has the map changed since the sample was drawn?)",
            differ.size,
            where,
        )


def _write(paths: tuple[Path, Path, Path], doc: dict[str, Any]) -> None:
    out, md, table = paths
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc}") from None
    write_text_atomic(md, report.markdown(doc))
    write_text_atomic(table, report.table_csv(doc))
    write_json_atomic(out, doc)
