"""``design``: a stratified random sample of a class map, for assessing its accuracy and area.

The strata are the map's classes, or the codes of another raster on its grid (``--strata``).
Allocation: Olofsson et al. (2014) sec. 5.1.1 by default (every stratum at least ``minimum``
units, the rest in proportion to area), or proportional, equal, or sizes given; the total
from ``--n`` or from a target standard error of the overall accuracy (their eq. 13). The map
is streamed twice in bands of rows: pass 1 counts each stratum's pixels, ranks are drawn
within each stratum (``accuracy.draw``), pass 2 picks the pixels of those ranks. A pixel
valid in the map (and in the strata raster) can be drawn; nodata never.

Writes the points (GeoPackage with the ``vector`` extra, or CSV) at pixel centres, in a
random order, with ``point_id``, ``stratum``, ``map_class``, an empty ``reference`` to fill in
and x/y in the map's CRS; and ``<points>.design.json``, the design ``assess`` reads.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._version import __version__
from ..accuracy.allocation import (
    DEFAULT_MINIMUM,
    METHODS,
    AllocationError,
    allocate,
    explicit,
    sample_size,
)
from ..accuracy.draw import draw_ranks, take
from ..errors import ConfigError, OutputError
from ..inputs.grid import crs_text
from ..inputs.pixels import pixel_centres
from ..outputs.atomic import replace_atomic, write_json_atomic
from .classmap import (
    ClassRaster,
    check_same_grid,
    open_class_raster,
    pairs_of,
    pixel_areas,
    stream,
    tally,
)

log = logging.getLogger(__name__)

DEFAULT_EXPECTED_UA = 0.8
SUFFIXES = (".gpkg", ".csv")


@dataclass
class Stratum:
    code: int
    name: str
    pixels: int
    area_ha: float | None
    units: int  # sample units drawn


@dataclass
class DesignResult:
    output: Path
    sidecar: Path
    strata: list[Stratum]
    n: int
    seed: int
    estimator_hint: str  # which estimator assess will use


def design_path(points: Path) -> Path:
    """The design sidecar of a points file: points.gpkg -> points.design.json."""
    return points.with_name(points.stem + ".design.json")


def design(
    map_path: str | Path,
    out: str | Path,
    *,
    n: int | None = None,
    target_se: float | None = None,
    expected_ua: str | None = None,
    strata: str | Path | None = None,
    allocation: str = "olofsson",
    minimum: int = DEFAULT_MINIMUM,
    seed: int | None = None,
    overwrite: bool = False,
) -> DesignResult:
    """Draw the sample and write ``out`` and its design sidecar."""
    out = Path(out)
    sidecar = design_path(out)
    _check_output(out, sidecar, overwrite)
    given_sizes = allocation not in METHODS
    if given_sizes and target_se is not None:
        raise ConfigError("--allocation gives the sizes: --target-se has nothing to choose")
    if not given_sizes and (n is None) == (target_se is None):
        raise ConfigError("give the sample size with --n N, or a target with --target-se S")
    if n is not None and n < 1:
        raise ConfigError(f"--n must be 1 or more, not {n}")
    classes = open_class_raster(map_path, "map")
    layer = classes
    if strata is not None:
        layer = open_class_raster(strata, "strata raster")
        check_same_grid(classes, layer)
    areas = pixel_areas(classes)
    counted = tally(classes, layer if strata is not None else None, areas)
    pixels, area_m2 = counted.by_stratum()
    codes = sorted(pixels)
    if not codes:
        raise ConfigError(f"the map {classes.path} has no valid pixel to sample")
    names = [layer.name(c) for c in codes]
    size = np.array([pixels[c] for c in codes], dtype=np.int64)
    weight = np.array([area_m2[c] for c in codes]) if areas.known else size.astype(float)

    expected = None
    if target_se is not None:
        expected = _expected(expected_ua, names)
        try:
            n = sample_size(weight, expected, target_se)
        except AllocationError as exc:
            raise ConfigError(f"--target-se {target_se}: {exc}") from None
        log.info("--target-se %s: n = %d (expected user's accuracies %s)", target_se, n, expected)
    try:
        if not given_sizes:
            assert n is not None
            units = allocate(n, weight, size, allocation, minimum)
        else:
            units = explicit(_sizes(allocation), size, names)
            if n is not None and n != int(units.sum()):
                raise ConfigError(
                    f"--n {n}, but the sizes of --allocation {allocation} add up to "
                    f"{int(units.sum())}"
                )
            n = int(units.sum())
    except AllocationError as exc:
        raise ConfigError(str(exc)) from None
    for name, k in zip(names, units, strict=True):
        if k < 2:
            log.warning(
                "stratum %r gets %d sample unit(s): assess needs at least 2 per stratum", name, k
            )

    seed = secrets.randbelow(2**63) if seed is None else int(seed)
    rng = np.random.default_rng(seed)
    ranks = draw_ranks(rng, size, units)
    picked = _pick(classes, layer if strata is not None else None, codes, ranks)
    if len(picked[0]) != int(units.sum()):  # pass 2 must see what pass 1 counted
        raise ConfigError(f"the map {classes.path} changed while it was being sampled")
    order = rng.permutation(len(picked[0]))  # a random order: nobody labels class by class
    rows, cols, map_codes, stratum_codes = (part[order] for part in picked)
    xs, ys = pixel_centres(classes.grid, rows, cols)
    frame = pd.DataFrame(
        {
            "point_id": np.arange(1, len(rows) + 1),
            "stratum": [layer.name(c) for c in stratum_codes],
            "map_class": [classes.name(c) for c in map_codes],
            "reference": [""] * len(rows),
            "x": [repr(float(v)) for v in xs],
            "y": [repr(float(v)) for v in ys],
        }
    )
    _write_points(frame, xs, ys, classes, out)
    listed = [
        Stratum(c, name, int(p), (area_m2[c] / 1e4) if areas.known else None, int(k))
        for c, name, p, k in zip(codes, names, size, units, strict=True)
    ]
    write_json_atomic(
        sidecar,
        {
            "tool": f"windowed_classify {__version__}",
            "map": str(classes.path.resolve()),
            "strata_raster": None if strata is None else str(layer.path.resolve()),
            "crs": crs_text(classes.grid.crs),
            "points": str(out.resolve()),
            "n": int(units.sum()),
            "seed": seed,
            "numpy": np.__version__,
            "allocation": {
                "method": allocation if allocation in METHODS else "given",
                "minimum": minimum if allocation == "olofsson" else None,
                "target_se": target_se,
                "expected_users_accuracy": None
                if expected is None
                else dict(zip(names, expected, strict=True)),
            },
            "pixel_area": areas.how,
            "strata": [
                {
                    "code": s.code,
                    "name": s.name,
                    "pixels": s.pixels,
                    "area_ha": s.area_ha,
                    "sample_size": s.units,
                }
                for s in listed
            ],
        },
    )
    hint = "olofsson2014" if strata is None else "stehman2014"
    return DesignResult(out, sidecar, listed, int(units.sum()), seed, hint)


def summary(result: DesignResult) -> str:
    """A few lines for the terminal: the strata and their sample sizes."""
    width = max(12, *(len(s.name) for s in result.strata))
    total = sum(s.pixels for s in result.strata) or 1
    lines = [
        f"design: {result.n} sample units in {len(result.strata)} strata (seed {result.seed}; "
        f"assess will use {result.estimator_hint})",
        f"  {'stratum':<{width}}  {'pixels':>14}  {'share':>7}  {'units':>6}",
    ]
    for s in result.strata:
        lines.append(
            f"  {s.name:<{width}}  {s.pixels:>14,}  {100 * s.pixels / total:>6.2f}%  {s.units:>6}"
        )
    lines.append(f"written: {result.output}, {result.sidecar}")
    lines.append("next: fill in the 'reference' column, then run assess")
    return "\n".join(lines)


def _check_output(out: Path, sidecar: Path, overwrite: bool) -> None:
    if out.suffix.lower() not in SUFFIXES:
        raise OutputError(f"-o {out}: the points are written as .gpkg or .csv")
    if out.suffix.lower() == ".gpkg":
        try:
            import geopandas  # noqa: F401
            import pyogrio  # noqa: F401
        except ImportError:
            raise OutputError(
                f"-o {out}: writing a GeoPackage needs geopandas and pyogrio: pip install "
                '"windowed_classify[vector]" (or write a CSV: -o points.csv)'
            ) from None
    for path in (out, sidecar):
        if path.exists() and not overwrite:
            raise OutputError(f"output {path} already exists; pass --overwrite to replace it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc}") from None


def _expected(text: str | None, names: list[str]) -> list[float]:
    """--expected-ua: one value for every stratum, one per stratum in order, or name=value
    pairs (strata not named get the default)."""
    if text is None:
        return [DEFAULT_EXPECTED_UA] * len(names)
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        if all("=" in p for p in parts):
            given = {k.strip(): float(v) for k, v in (p.split("=", 1) for p in parts)}
            unknown = [k for k in given if k not in names]
            if unknown:
                raise ConfigError(
                    f"--expected-ua names {', '.join(map(repr, unknown))}, which are not strata "
                    f"(strata: {', '.join(names)})"
                )
            return [given.get(name, DEFAULT_EXPECTED_UA) for name in names]
        values = [float(p) for p in parts]
    except ValueError:
        raise ConfigError(f"--expected-ua {text!r}: give numbers in [0, 1]") from None
    if len(values) == 1:
        return values * len(names)
    if len(values) != len(names):
        raise ConfigError(
            f"--expected-ua gives {len(values)} values for {len(names)} strata "
            f"({', '.join(names)}, in this order)"
        )
    return values


def _sizes(text: str) -> list[int]:
    try:
        return [int(p) for p in str(text).split(",")]
    except ValueError:
        raise ConfigError(
            f"--allocation {text!r}: one of {', '.join(METHODS)}, or sample sizes N1,N2,... "
            "per stratum in the order of their codes"
        ) from None


def _pick(
    classes: ClassRaster, strata: ClassRaster | None, codes: list[int], ranks: list[np.ndarray]
) -> tuple[np.ndarray, ...]:
    """Pass 2: (rows, cols, class codes, stratum codes) of the pixels whose within-stratum
    rank was drawn, in row-major order."""
    index = {c: h for h, c in enumerate(codes)}
    seen = np.zeros(len(codes), dtype=np.int64)
    found: list[tuple[np.ndarray, ...]] = []
    for window, c, s, valid in stream(classes, strata):
        sv = s[valid]
        if not sv.size:
            continue
        present, inverse = pairs_of(None, sv)
        counts = np.bincount(inverse, minlength=len(present))
        positions = None
        for k, (code, _) in enumerate(present):
            h = index[code]
            local = take(ranks[h], int(seen[h]), int(counts[k]))
            seen[h] += counts[k]
            if not local.size:
                continue
            if positions is None:
                positions = np.flatnonzero(valid)
            flat = positions[np.flatnonzero(inverse == k)[local]]
            width = int(window.width)
            found.append(
                (
                    int(window.row_off) + flat // width,
                    int(window.col_off) + flat % width,
                    c.ravel()[flat],
                    s.ravel()[flat],
                )
            )
    if not found:
        return tuple(np.zeros(0, dtype=np.int64) for _ in range(4))
    return tuple(np.concatenate(part) for part in zip(*found, strict=True))


def _write_points(
    frame: pd.DataFrame, xs: np.ndarray, ys: np.ndarray, classes: ClassRaster, out: Path
) -> None:
    if out.suffix.lower() == ".csv":
        replace_atomic(out, lambda temp: frame.to_csv(temp, index=False, encoding="utf-8"))
        return
    import geopandas

    crs: Any = classes.grid.crs
    gdf = geopandas.GeoDataFrame(
        frame.drop(columns=["x", "y"]).assign(x=xs, y=ys),
        geometry=geopandas.points_from_xy(xs, ys),
        crs=crs.to_wkt() if crs is not None else None,
    )

    def write(temp: Path) -> None:
        try:
            gdf.to_file(temp, layer="points", driver="GPKG", engine="pyogrio")
        except Exception as exc:  # pyogrio's own errors
            raise OSError(str(exc)) from None

    replace_atomic(out, write)
