"""Pixel areas: projected grids from the transform and the CRS's unit; geographic grids on
the ellipsoid, row by row, against pyproj's geodesic areas and the ellipsoid's own area."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from rasterio.transform import Affine, from_origin

from windowed_classify.accuracy.areas import geographic_row_areas, projected_pixel_area

pyproj = pytest.importorskip("pyproj")  # the 'geodesic' extra, in the 'test' extra

WGS84_AREA_M2 = 510_065_621_724_088.4  # the surface of the WGS 84 ellipsoid (4 pi R_q^2)


def cell_area(geod: Any, west: float, south: float, east: float, north: float) -> float:
    """pyproj's geodesic area of a lon/lat cell whose parallels are traced by 2,000 points
    (so that the chords between them follow the parallels)."""
    lons = np.linspace(west, east, 2001)
    ring_lons = np.concatenate([lons, lons[::-1]])
    ring_lats = np.concatenate([np.full(2001, south), np.full(2001, north)])
    area, _ = geod.polygon_area_perimeter(ring_lons, ring_lats)
    return abs(area)


@pytest.mark.parametrize(
    "origin, size, rows", [((10.0, 62.0), 0.5, 20), ((-75.3, -8.1), 1 / 3600, 30)]
)
def test_epsg_4326_rows_against_pyproj_geodesic_areas(
    origin: tuple[float, float], size: float, rows: int
) -> None:
    geod = pyproj.CRS.from_epsg(4326).get_geod()
    transform = from_origin(origin[0], origin[1], size, size)
    got = geographic_row_areas(transform, rows, geod)
    for r in range(rows):
        north = origin[1] - r * size
        want = cell_area(geod, origin[0], north - size, origin[0] + size, north)
        assert got[r] == pytest.approx(want, rel=1e-7)
    # rows go south: they grow towards the equator, shrink towards the south pole
    assert np.all(np.diff(got) > 0) if origin[1] > 0 else np.all(np.diff(got) < 0)


def test_a_global_grid_covers_the_ellipsoid() -> None:
    geod = pyproj.CRS.from_epsg(4326).get_geod()
    rows = geographic_row_areas(from_origin(-180, 90, 1.0, 1.0), 180, geod)
    assert rows.sum() * 360 == pytest.approx(WGS84_AREA_M2, rel=1e-9)
    # another ellipsoid, another area: GRS 80 differs from WGS 84 in the 10th digit only,
    # the sphere of the same radius by far more
    sphere = pyproj.Geod(a=6_378_137.0, b=6_378_137.0)
    on_sphere = geographic_row_areas(from_origin(-180, 90, 1.0, 1.0), 180, sphere)
    assert on_sphere.sum() * 360 == pytest.approx(4 * np.pi * 6_378_137.0**2, rel=1e-9)


def test_rotated_geographic_grids_are_refused() -> None:
    geod = pyproj.Geod(ellps="WGS84")
    with pytest.raises(ValueError, match="north-up"):
        geographic_row_areas(Affine(0.1, 0.01, 0, 0.01, -0.1, 50), 5, geod)


def test_projected_pixel_areas() -> None:
    assert projected_pixel_area(from_origin(0, 0, 30, 30), 1.0) == 900.0
    feet = 1200 / 3937  # the US survey foot, in metres
    assert projected_pixel_area(from_origin(0, 0, 100, 100), feet) == pytest.approx(
        (100 * feet) ** 2, rel=1e-12
    )
    # a rotated grid: the parallelogram's area
    assert projected_pixel_area(Affine(3.0, 4.0, 0, -4.0, 3.0, 0), 1.0) == pytest.approx(25.0)
