"""The area of a grid's pixels, in square metres.

- Projected grid: every pixel has the area of the parallelogram its transform spans,
  |a e - b d| in the CRS's units squared, times the unit's length in metres squared.
- Geographic grid (north-up): the pixels of a row share one area, which shrinks with
  latitude: the area on the CRS's ellipsoid of the cell between the row's two parallels and
  two meridians one pixel apart, from pyproj's ``Geod`` (Karney's geodesic polygon area). A
  parallel is not a geodesic, so each parallel edge is split into pieces of at most
  ``MAX_STEP_DEGREES`` of longitude; the area then agrees with the ellipsoid's closed-form
  zone area to about 1e-8 of it, from degree-wide cells to arc-second ones.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MAX_STEP_DEGREES = 0.01


def projected_pixel_area(transform: Any, metres_per_unit: float) -> float:
    """The area (m^2) of every pixel of a projected grid."""
    t = transform
    return abs(t.a * t.e - t.b * t.d) * metres_per_unit**2


def geographic_row_areas(
    transform: Any, height: int, geod: Any, degrees_per_unit: float = 1.0
) -> np.ndarray:
    """The area (m^2) of a pixel in each row of a north-up geographic grid (float64, height).

    ``geod``: a ``pyproj.Geod`` on the CRS's ellipsoid; ``degrees_per_unit``: the size of the
    CRS's angular unit in degrees (1 for degrees).
    """
    t = transform
    if t.b != 0 or t.d != 0:
        raise ValueError("a rotated geographic grid: pixel areas need a north-up transform")
    width = abs(t.a) * degrees_per_unit
    steps = max(1, math.ceil(width / MAX_STEP_DEGREES))
    lons = np.linspace(0.0, width, steps + 1)  # a pixel's area does not depend on its longitude
    ring_lons = np.concatenate([lons, lons[::-1]])
    edges = (t.f + t.e * np.arange(height + 1)) * degrees_per_unit
    edges = np.clip(edges, -90.0, 90.0)
    out = np.empty(height, dtype=np.float64)
    for row in range(height):
        top, bottom = edges[row], edges[row + 1]
        ring_lats = np.concatenate([np.full(steps + 1, bottom), np.full(steps + 1, top)])
        area, _ = geod.polygon_area_perimeter(ring_lons, ring_lats)
        out[row] = abs(area)
    return out
