"""The grid every model layer shares: CRS, transform and shape, and what differs between two."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from affine import Affine
    from rasterio.crs import CRS


@dataclass(frozen=True)
class Grid:
    crs: CRS | None  # None: the layers carry no CRS (a grid of plain pixel coordinates)
    transform: Affine
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def same_grid(ref: Grid, this: Grid) -> bool:
    return (
        (ref.width, ref.height) == (this.width, this.height)
        and ref.crs == this.crs
        and this.transform.almost_equals(ref.transform, precision=1e-9)
    )


def grid_differences(ref: Grid, this: Grid) -> list[str]:
    """What differs between two grids, each with both values ("CRS X (expected Y)")."""
    diffs = []
    if ref.crs != this.crs:
        diffs.append(f"CRS {crs_text(this.crs)} (expected {crs_text(ref.crs)})")
    rt, tt = ref.transform, this.transform
    if not math.isclose(rt.a, tt.a, rel_tol=1e-9) or not math.isclose(rt.e, tt.e, rel_tol=1e-9):
        diffs.append(
            f"transform resolution {_num(tt.a)} x {_num(-tt.e)} "
            f"(expected {_num(rt.a)} x {_num(-rt.e)})"
        )
    if (rt.b, rt.d) != (tt.b, tt.d):
        diffs.append(f"transform rotation terms {(tt.b, tt.d)} (expected {(rt.b, rt.d)})")
    if not (math.isclose(rt.c, tt.c, abs_tol=1e-9) and math.isclose(rt.f, tt.f, abs_tol=1e-9)):
        diffs.append(
            f"transform origin ({_num(tt.c)}, {_num(tt.f)}) (expected ({_num(rt.c)}, {_num(rt.f)}))"
        )
    if (ref.width, ref.height) != (this.width, this.height):
        diffs.append(
            f"shape {this.width} x {this.height} pixels (expected {ref.width} x {ref.height})"
        )
    if not diffs:  # tiny transform differences beyond the tolerance
        diffs.append(f"transform {tuple(tt)[:6]} (expected {tuple(rt)[:6]})")
    return diffs


def _num(value: float) -> str:
    return f"{value:.10g}"


def crs_text(crs: CRS | None) -> str:
    if crs is None:
        return "none"
    try:
        return str(crs.to_string())
    except Exception:  # pragma: no cover - exotic CRS objects
        return str(crs)


def grid_text(grid: Grid) -> str:
    """One grid in words: CRS, pixel size, origin, shape."""
    t = grid.transform
    return (
        f"CRS {crs_text(grid.crs)}, pixel {_num(abs(t.a))} x {_num(abs(t.e))}, "
        f"origin ({_num(t.c)}, {_num(t.f)}), {grid.width} x {grid.height} pixels"
    )
