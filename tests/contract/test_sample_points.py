"""`sample` on the inputs GIS users bring: multi-layer files (--layer), polygons (a row per
pixel whose centre is inside, or one per polygon), multipoints, CRSs (a shapefile without
.prj, --points-crs), CSV coordinate columns, and the reference grid rasters.align chose."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from helpers import DEFAULT_TRANSFORM, Case, build_case, run_main, write_raster, write_yaml
from rasterio.features import rasterize
from rasterio.transform import from_origin
from rasterio.warp import transform as warp
from reference import nodata_mask

from windowed_classify.commands.sample import sample
from windowed_classify.errors import InputError

gpd = pytest.importorskip("geopandas")  # the 'vector' extra, in the 'test' extra
shapely_geometry = pytest.importorskip("shapely.geometry")
Point, Polygon = shapely_geometry.Point, shapely_geometry.Polygon
MultiPoint, MultiPolygon = shapely_geometry.MultiPoint, shapely_geometry.MultiPolygon

RES = DEFAULT_TRANSFORM.a
X0, Y0 = DEFAULT_TRANSFORM.c, DEFAULT_TRANSFORM.f
NAMES = ["elev", "slope", "ndvi"]


def grids(case: Case) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each layer read in full, straight from its file: (float32 values, nodata mask)."""
    out = {}
    for spec in case.stack.layers:
        with rasterio.open(case.folder / spec.relpath) as ds:
            values = ds.read(1).astype(np.float32)
        mask = nodata_mask(values, spec.file_nodata, case.config["nodata"]["values"])
        out[spec.name] = (values, mask)
    return out


def assert_values(got: pd.DataFrame, case: Case, rows: np.ndarray, cols: np.ndarray) -> None:
    """Each row's layer columns hold the raster's own float32 at (row, col), or ''."""
    full = grids(case)
    for name in NAMES:
        values, mask = full[name]
        want = [
            "" if mask[r, c] else repr(float(values[r, c])) for r, c in zip(rows, cols, strict=True)
        ]
        assert list(got[name]) == want, name


def centre(row: float, col: float) -> tuple[float, float]:
    return X0 + (col + 0.5) * RES, Y0 - (row + 0.5) * RES


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


# --------------------------------------------------------------------------- layers


def two_layer_gpkg(tmp_path: Path) -> Path:
    path = tmp_path / "field.gpkg"
    plots = gpd.GeoDataFrame(
        {"plot": ["a", "b"]},
        geometry=[Point(*centre(2, 3)), Point(*centre(10, 20))],
        crs="EPSG:32633",
    )
    roads = gpd.GeoDataFrame({"name": ["r"]}, geometry=[Point(*centre(30, 40))], crs="EPSG:32633")
    plots.to_file(path, layer="plots", engine="pyogrio")
    roads.to_file(path, layer="roads", engine="pyogrio")
    return path


def test_a_multi_layer_file_needs_layer_and_lists_its_layers(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    config, points, out = case.write_config(), two_layer_gpkg(tmp_path), tmp_path / "v.csv"
    proc = run_main("sample", config, points, "-o", out)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "field.gpkg has 2 layers: plots, roads" in proc.stderr and "--layer" in proc.stderr
    assert not out.exists()
    proc = run_main("sample", config, points, "-o", out, "--layer", "parcels")
    assert proc.returncode == 2 and "no layer 'parcels'" in proc.stderr
    assert "plots, roads" in proc.stderr and not out.exists()

    proc = run_main("sample", config, points, "-o", out, "--layer", "roads")
    assert proc.returncode == 0, proc.stderr
    got = read(out)
    assert list(got["name"]) == ["r"]
    assert_values(got, case, np.array([30]), np.array([40]))
    # the layer named with the path, as QGIS writes it and as file:layer
    for given in (f"{points}|layername=plots", f"{points}:plots"):
        again = tmp_path / "again.csv"
        proc = run_main("sample", config, given, "-o", again, "--overwrite")
        assert proc.returncode == 0, proc.stderr
        assert list(read(again)["plot"]) == ["a", "b"]
        assert_values(read(again), case, np.array([2, 10]), np.array([3, 20]))


def test_tables_without_geometry_are_not_layers(tmp_path: Path) -> None:
    """QGIS keeps styles in a GeoPackage table (layer_styles): not a second layer."""
    pyogrio = pytest.importorskip("pyogrio")
    case = build_case(tmp_path)
    points = tmp_path / "styled.gpkg"
    gpd.GeoDataFrame({"plot": ["a"]}, geometry=[Point(*centre(4, 4))], crs="EPSG:32633").to_file(
        points, layer="plots", engine="pyogrio"
    )
    pyogrio.write_dataframe(pd.DataFrame({"styleName": ["s"]}), points, layer="layer_styles")
    assert len(pyogrio.list_layers(points)) == 2
    result = sample(case.write_config(), points, tmp_path / "v.csv")
    assert result.points == 1


# --------------------------------------------------------------------------- polygons


def polygons_layer() -> gpd.GeoDataFrame:
    """Polygons in pixel units of the grid: overlapping, a multipolygon, one partly off the
    grid, one too small to hold a pixel centre, one wholly outside."""
    rng = np.random.default_rng(7)

    def blob(row: float, col: float, radius: float) -> Polygon:
        angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
        radii = radius * rng.uniform(0.6, 1.0, 9)
        return Polygon(
            [
                centre(row + r * np.sin(a) - 0.5, col + r * np.cos(a) - 0.5)
                for a, r in zip(angles, radii, strict=True)
            ]
        )

    shapes = [
        blob(8.3, 9.1, 5.2),
        blob(11.7, 12.4, 4.4),  # overlaps the first
        MultiPolygon([blob(25.2, 7.9, 3.1), blob(30.6, 30.3, 2.7)]),
        blob(1.1, 43.2, 4.0),  # partly off the grid (east and north)
        Polygon([centre(20.1, 20.1), centre(20.1, 20.3), centre(20.3, 20.3)]),  # no centre
        blob(80.0, 80.0, 3.0),  # wholly outside
    ]
    return gpd.GeoDataFrame(
        {"crop": ["wheat", "maize", "rye", "oats", "tiny", "far"], "year": [1, 2, 3, 4, 5, 6]},
        geometry=shapes,
        crs="EPSG:32633",
    )


def test_polygons_give_the_pixels_whose_centre_is_inside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    case = build_case(tmp_path)
    layer = polygons_layer()
    points = tmp_path / "fields.gpkg"
    layer.to_file(points, engine="pyogrio")
    out = tmp_path / "v.csv"
    result = sample(case.write_config(), points, out)

    # the reference: rasterize each polygon alone on the whole grid, read the rasters whole
    ids, rows, cols = [], [], []
    for i, geometry in enumerate(layer.geometry):
        mask = rasterize(
            [(geometry, 1)], out_shape=(37, 45), transform=DEFAULT_TRANSFORM, all_touched=False
        )
        r, c = np.nonzero(mask)
        ids += [i] * len(r)
        rows += list(r)
        cols += list(c)
    rows_a, cols_a = np.array(rows), np.array(cols)
    got = read(out)
    assert result.points == len(got) == len(rows) > 60
    assert list(got.columns) == ["crop", "year", "polygon_id", "x", "y", *NAMES]
    assert list(got["polygon_id"]) == [str(i) for i in ids]
    assert list(got["crop"]) == [layer["crop"][i] for i in ids]
    assert set(ids) == {0, 1, 2, 3}  # the tiny and the far one give nothing...
    assert "hold no pixel centre" in caplog.text and "polygon_id 4" in caplog.text
    assert "lie outside the grid" in caplog.text and "polygon_id 5" in caplog.text
    # ... the overlap is in both polygons, x/y are the pixels' centres
    assert len(set(zip(rows, cols, strict=True))) < len(rows)
    xs, ys = centre(rows_a, cols_a)
    assert np.allclose(got["x"].astype(float), xs) and np.allclose(got["y"].astype(float), ys)
    assert_values(got, case, rows_a, cols_a)


def test_polygons_read_only_the_windows_they_cover(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rasterio.windows import Window

    from windowed_classify.inputs import polygons as polygons_mod

    case = build_case(tmp_path, height=64, width=80, layout=("tiled", 16))
    burnt: list[tuple[int, int]] = []
    real_burn = polygons_mod.burn

    def spy(geometry: object, grid: object, window: Window) -> tuple[np.ndarray, np.ndarray]:
        burnt.append((int(window.height), int(window.width)))
        return real_burn(geometry, grid, window)

    monkeypatch.setattr(polygons_mod, "burn", spy)
    # pixel edges: rows 3-7 and columns 3-8 have their centres inside
    corners = [(3, 3), (3, 9), (8, 9), (8, 3)]
    square = Polygon([(X0 + c * RES, Y0 - r * RES) for r, c in corners])
    points = tmp_path / "one.gpkg"
    gpd.GeoDataFrame({"k": [1]}, geometry=[square], crs="EPSG:32633").to_file(
        points, engine="pyogrio"
    )
    result = sample(case.write_config(), points, tmp_path / "v.csv")
    assert result.points == 5 * 6
    assert burnt == [(5, 6)]  # the polygon's bounding window, never the 64 x 80 grid
    assert result.reads == 1  # and one block holds its pixels


def test_polygons_centroid_gives_one_row_per_polygon(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    layer = polygons_layer().iloc[:4]
    points = tmp_path / "fields.gpkg"
    layer.to_file(points, engine="pyogrio")
    out = tmp_path / "v.csv"
    proc = run_main("sample", case.write_config(), points, "-o", out, "--polygons", "centroid")
    assert proc.returncode == 0, proc.stderr
    got = read(out)
    assert list(got["polygon_id"]) == ["0", "1", "2", "3"]
    inner = layer.geometry.representative_point()
    assert np.allclose(got["x"].astype(float), inner.x) and np.allclose(
        got["y"].astype(float), inner.y
    )
    cols = np.floor((inner.x.to_numpy() - X0) / RES).astype(int)
    rows = np.floor((Y0 - inner.y.to_numpy()) / RES).astype(int)
    assert_values(got, case, rows, cols)


def test_multipoints_give_a_row_per_point_with_the_feature_id(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    layer = gpd.GeoDataFrame(
        {"plot": ["p", "q"]},
        geometry=[
            MultiPoint([centre(1, 1), centre(2, 5), centre(9, 9)]),
            MultiPoint([centre(30, 40)]),
        ],
        crs="EPSG:32633",
    )
    points = tmp_path / "clusters.gpkg"
    layer.to_file(points, engine="pyogrio")
    out = tmp_path / "v.csv"
    assert sample(case.write_config(), points, out).points == 4
    got = read(out)
    assert list(got["plot"]) == ["p", "p", "p", "q"]
    assert list(got["feature_id"]) == ["0", "0", "0", "1"]
    assert_values(got, case, np.array([1, 2, 9, 30]), np.array([1, 5, 9, 40]))


def test_mixed_geometry_types_are_an_error_naming_them(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    square = Polygon([centre(3, 3), centre(3, 8), centre(7, 8), centre(7, 3)])
    layer = gpd.GeoDataFrame(
        {"k": [1, 2, 3]},
        geometry=[Point(*centre(1, 1)), square, Point(*centre(2, 2))],
        crs="EPSG:32633",
    )
    points = tmp_path / "mixed.gpkg"
    layer.to_file(points, engine="pyogrio")
    out = tmp_path / "v.csv"
    proc = run_main("sample", case.write_config(), points, "-o", out)
    assert proc.returncode == 2 and not out.exists()
    assert "mixes geometry types" in proc.stderr
    assert "Point (2)" in proc.stderr and "Polygon (1)" in proc.stderr


# --------------------------------------------------------------------------- CRS


def plots_in(crs: str, rows: np.ndarray, cols: np.ndarray) -> tuple[list[float], list[float]]:
    xs, ys = centre(rows, cols)
    if crs == "EPSG:32633":
        return list(xs), list(ys)
    return warp("EPSG:32633", crs, list(xs), list(ys))


def test_a_shapefile_without_prj_takes_points_crs(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    rows, cols = np.array([3, 17, 30]), np.array([4, 22, 41])
    lon, lat = plots_in("EPSG:4326", rows, cols)
    shp = tmp_path / "plots.shp"
    with pytest.warns(UserWarning, match="crs"):  # pyogrio: no CRS given, as meant
        gpd.GeoDataFrame(
            {"plot": ["a", "b", "c"]},
            geometry=[Point(a, b) for a, b in zip(lon, lat, strict=True)],
        ).to_file(shp, engine="pyogrio")
    assert not shp.with_suffix(".prj").exists()
    out = tmp_path / "v.csv"
    proc = run_main("sample", case.write_config(), shp, "-o", out, "--points-crs", "EPSG:4326")
    assert proc.returncode == 0, proc.stderr
    got = read(out)
    xs, ys = centre(rows, cols)
    assert np.allclose(got["x"].astype(float), xs, atol=1e-3)
    assert np.allclose(got["y"].astype(float), ys, atol=1e-3)
    assert_values(got, case, rows, cols)
    # without --points-crs the degrees are taken in the rasters' CRS: said, naming the option
    proc = run_main("sample", case.write_config(), shp, "-o", tmp_path / "w.csv")
    assert proc.returncode == 0
    assert "has no CRS" in proc.stderr and "look like longitudes and latitudes" in proc.stderr
    assert "--points-crs" in proc.stderr


def test_a_layer_crs_and_another_points_crs_are_an_error(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    points = tmp_path / "plots.gpkg"
    gpd.GeoDataFrame({"plot": ["a"]}, geometry=[Point(*centre(3, 3))], crs="EPSG:32633").to_file(
        points, engine="pyogrio"
    )
    out = tmp_path / "v.csv"
    proc = run_main("sample", case.write_config(), points, "-o", out, "--points-crs", "EPSG:4326")
    assert proc.returncode == 2 and not out.exists()
    assert "EPSG:32633" in proc.stderr and "EPSG:4326" in proc.stderr
    assert "plots.gpkg" in proc.stderr
    # the same CRS twice is no contradiction
    proc = run_main("sample", case.write_config(), points, "-o", out, "--points-crs", "EPSG:32633")
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------- CSV columns


@pytest.mark.parametrize("names", [("Lon", "LAT"), ("longitude", "Latitude")])
def test_csv_lon_lat_are_kept_and_x_y_are_in_the_rasters_crs(
    tmp_path: Path, names: tuple[str, str]
) -> None:
    case = build_case(tmp_path)
    rows, cols = np.array([5, 20, 33]), np.array([6, 30, 12])
    lon, lat = plots_in("EPSG:4326", rows, cols)
    lon_text = [repr(v) for v in lon]
    lat_text = [repr(v) for v in lat]
    points = tmp_path / "p.csv"
    pd.DataFrame({"id": ["1", "2", "3"], names[0]: lon_text, names[1]: lat_text}).to_csv(
        points, index=False
    )
    out = tmp_path / "v.csv"
    proc = run_main("sample", case.write_config(), points, "-o", out, "--points-crs", "EPSG:4326")
    assert proc.returncode == 0, proc.stderr
    got = read(out)
    assert list(got.columns) == ["id", names[0], names[1], "x", "y", *NAMES]
    assert list(got[names[0]]) == lon_text and list(got[names[1]]) == lat_text  # as written
    xs, ys = centre(rows, cols)
    assert np.allclose(got["x"].astype(float), xs, atol=1e-3)
    assert np.allclose(got["y"].astype(float), ys, atol=1e-3)
    assert_values(got, case, rows, cols)


def test_csv_x_y_in_another_crs_are_kept_as_x_input(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    rows, cols = np.array([5, 20]), np.array([6, 30])
    lon, lat = plots_in("EPSG:4326", rows, cols)
    points = tmp_path / "p.csv"
    pd.DataFrame({"x": [repr(v) for v in lon], "y": [repr(v) for v in lat]}).to_csv(
        points, index=False
    )
    out = tmp_path / "v.csv"
    sample(case.write_config(), points, out, points_crs="EPSG:4326")
    got = read(out)
    assert list(got.columns) == ["x_input", "y_input", "x", "y", *NAMES]
    assert list(got["x_input"]) == [repr(v) for v in lon]
    xs, _ = centre(rows, cols)
    assert np.allclose(got["x"].astype(float), xs, atol=1e-3)
    assert_values(got, case, rows, cols)


@pytest.mark.parametrize(
    "header, needles",
    [
        ("x,y,lon,lat", ["'x'/'y'", "'lon'/'lat'", "ambiguous"]),
        ("Easting,Northing,X,Y", ["'X'/'Y'", "'Easting'/'Northing'"]),
        ("lat,Lat,lon", ["'lat'", "'Lat'"]),
    ],
)
def test_ambiguous_csv_coordinates_are_an_error(
    tmp_path: Path, header: str, needles: list[str]
) -> None:
    case = build_case(tmp_path)
    points = tmp_path / "p.csv"
    points.write_text(header + "\n" + ",".join(["1"] * len(header.split(","))) + "\n")
    with pytest.raises(InputError) as caught:
        sample(case.write_config(), points, tmp_path / "v.csv")
    for needle in needles:
        assert needle in str(caught.value), (needle, str(caught.value))


def test_csv_without_coordinates_lists_the_names_and_points_crs(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    points = tmp_path / "p.csv"
    points.write_text("plot,lat\nA,1\n")
    proc = run_main("sample", case.write_config(), points, "-o", tmp_path / "v.csv")
    assert proc.returncode == 2
    for needle in ("x and y", "lon and lat", "longitude and latitude", "easting and northing"):
        assert needle in proc.stderr
    assert "--points-crs" in proc.stderr and "'lat' but no 'lon'" in proc.stderr


def test_csv_degrees_on_a_projected_grid_are_said(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    rows, cols = np.array([5, 20]), np.array([6, 30])
    lon, lat = plots_in("EPSG:4326", rows, cols)
    points = tmp_path / "p.csv"
    pd.DataFrame({"lon": lon, "lat": lat}).to_csv(points, index=False)
    proc = run_main("sample", case.write_config(), points, "-o", tmp_path / "v.csv")
    assert proc.returncode == 0
    assert "look like longitudes and latitudes" in proc.stderr
    assert "--points-crs EPSG:4326" in proc.stderr


def test_csv_needs_no_vector_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case = build_case(tmp_path)
    monkeypatch.setitem(sys.modules, "geopandas", None)  # import geopandas -> ImportError
    monkeypatch.setitem(sys.modules, "pyogrio", None)
    points = tmp_path / "p.csv"
    x, y = centre(4, 4)
    points.write_text(f"Easting,Northing\n{x},{y}\n")
    out = tmp_path / "v.csv"
    assert sample(case.write_config(), points, out).points == 1
    assert_values(read(out), case, np.array([4]), np.array([4]))


# --------------------------------------------------------------------------- align


def test_points_off_the_grid_align_chose_are_counted_and_explained(tmp_path: Path) -> None:
    """Two layers share a small grid, a third covers more: the tool chooses the small one."""
    rng = np.random.default_rng(2)
    folder = tmp_path / "cov"
    small = from_origin(500000.0, 6000000.0, 80.0, 80.0)
    large = from_origin(499200.0, 6000800.0, 40.0, 40.0)  # 10 x 10 small pixels around it
    for name in ("a", "b"):
        write_raster(
            folder / f"{name}.tif", rng.normal(size=(20, 20)).astype(np.float32), transform=small
        )
    write_raster(folder / "wide.tif", rng.normal(size=(80, 80)).astype(np.float32), transform=large)
    config = write_yaml(tmp_path / "c.yaml", {"rasters": {"folder": str(folder), "align": True}})
    inside = [
        (500100.0, 5999900.0),
        (501000.0, 5999000.0),
        (501500.0, 5998500.0),
        (500700.0, 5998700.0),
    ]
    off_but_covered = [(499500.0, 6000500.0), (499300.0, 5999000.0)]
    points = tmp_path / "p.csv"
    pd.DataFrame(inside + off_but_covered, columns=["x", "y"]).to_csv(points, index=False)
    proc = run_main("sample", config, points, "-o", tmp_path / "v.csv")
    assert proc.returncode == 0, proc.stderr
    assert "2 of 6 point(s) lie outside the grid" in proc.stderr
    line = next(li for li in proc.stderr.splitlines() if "rasters.align chose" in li)
    assert line.startswith("WARNING") and "2 of 6 point(s)" in line
    assert "rasters.reference" in line and "a.tif" in line and "wide.tif" in line
    # with rasters.reference on the wide grid, they are sampled
    config = write_yaml(
        tmp_path / "c2.yaml",
        {"rasters": {"folder": str(folder), "align": True, "reference": str(folder / "wide.tif")}},
    )
    proc = run_main("sample", config, points, "-o", tmp_path / "w.csv")
    assert proc.returncode == 0 and "outside" not in proc.stderr
    assert (read(tmp_path / "w.csv")["wide"] != "").all()
