"""`sample`: the values under points are exactly the raster values a run reads (float32, the
nodata rules of a run), the input's columns are kept, and only blocks holding points are read."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import (
    DEFAULT_TRANSFORM,
    Case,
    LayerSpec,
    Stack,
    build_case,
    run_main,
    save_model,
    train_model,
    write_yaml,
)
from reference import nodata_mask

from windowed_classify.commands.sample import sample
from windowed_classify.errors import InputError

RES = DEFAULT_TRANSFORM.a
X0, Y0 = DEFAULT_TRANSFORM.c, DEFAULT_TRANSFORM.f


def expected_values(case: Case, names: list[str], xs: np.ndarray, ys: np.ndarray) -> list:
    """Per point and layer: the float32 under it, or None (nodata or outside); read in full."""
    out = []
    grids = {}
    for name in names:
        spec = next(s for s in case.stack.layers if s.name == name)
        values = spec.data.astype(np.float32)
        mask = nodata_mask(values, spec.file_nodata, case.config["nodata"]["values"])
        grids[name] = (values, mask)
    for x, y in zip(xs, ys, strict=True):
        col, row = math.floor((x - X0) / RES), math.floor((Y0 - y) / RES)
        row_vals = []
        for name in names:
            values, mask = grids[name]
            inside = 0 <= row < values.shape[0] and 0 <= col < values.shape[1]
            row_vals.append(values[row, col] if inside and not mask[row, col] else None)
        out.append(row_vals)
    return out


def points_for(height: int, width: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random points over the grid plus a margin, pixel edges and corners included."""
    rng = np.random.default_rng(seed)
    xs = X0 + rng.uniform(-2, width + 2, n) * RES
    ys = Y0 - rng.uniform(-2, height + 2, n) * RES
    edges_x = X0 + np.array([0, width, 3, 0, width - 1e-6]) * RES
    edges_y = Y0 - np.array([0, height, 5, height - 1e-6, 0]) * RES
    return np.concatenate([xs, edges_x]), np.concatenate([ys, edges_y])


def test_values_are_exactly_the_raster_values(tmp_path: Path) -> None:
    case = build_case(tmp_path, names=("elev", "slope", "ndvi", "unused"))
    # the model uses three layers, in an order that differs from the files' order
    model = train_model(
        ["slope", "ndvi", "elev"], {s.name: s.data.ravel() for s in case.stack.layers}, ["a", "b"]
    )
    save_model(model, case.model_path)
    xs, ys = points_for(37, 45, 300, seed=1)
    ids = [f"{i:04d}" for i in range(len(xs))]
    points = tmp_path / "points.csv"
    pd.DataFrame(
        {"id": ids, "x": [repr(float(v)) for v in xs], "y": [repr(float(v)) for v in ys]}
    ).to_csv(points, index=False)
    out = tmp_path / "values.csv"
    proc = run_main("sample", case.write_config(), points, "-o", out)
    assert proc.returncode == 0, proc.stderr

    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    names = ["slope", "ndvi", "elev", "unused"]  # model order, then the unused layer
    assert list(got.columns) == ["id", "x", "y", *names]
    assert list(got["id"]) == ids  # input kept as written (leading zeros)
    expected = expected_values(case, names, xs, ys)
    n_values = n_empty = 0
    for i, row in enumerate(expected):
        for name, want in zip(names, row, strict=True):
            text = got[name].iloc[i]
            if want is None:
                assert text == "", (i, name, text)
                n_empty += 1
            else:
                # the text is the float32's exact value: as float64 and as float32
                assert float(text) == float(want), (i, name, text, want)
                assert np.float32(text) == want
                n_values += 1
    assert n_values > 500 and n_empty > 50  # both kinds really exercised


def test_outside_points_are_reported_and_kept(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    points = tmp_path / "points.csv"
    inside_x, inside_y = X0 + 2.5 * RES, Y0 - 2.5 * RES
    frame = pd.DataFrame(
        {
            "name": ["in", "west", "in2", "south"],
            "x": [inside_x, X0 - 1, inside_x, inside_x],
            "y": [inside_y, inside_y, inside_y, Y0 - 37 * RES],  # on the grid's bottom edge
        }
    )
    frame.to_csv(points, index=False)
    out = tmp_path / "values.csv"
    proc = run_main("sample", case.write_config(), points, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "2 of 4 point(s)" in proc.stderr and "data rows 2, 4" in proc.stderr
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(got["name"]) == ["in", "west", "in2", "south"]
    for name in ("elev", "slope", "ndvi"):
        assert got[name].iloc[1] == "" and got[name].iloc[3] == ""
        assert got[name].iloc[0] == got[name].iloc[2]


def test_input_columns_are_kept_as_written(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    points = tmp_path / "points.csv"
    points.write_text(
        "\ufeffplot,x,y,note\n"  # a BOM, as Excel writes it
        f'007,{X0 + 100},{Y0 - 100},"a, quoted; text"\n'
        f"NA,{X0 + 900.5},{Y0 - 1000.25},\n",
        encoding="utf-8",
    )
    out = tmp_path / "values.csv"
    assert sample(case.write_config(), points, out).points == 2
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(got["plot"]) == ["007", "NA"]
    assert list(got["note"]) == ["a, quoted; text", ""]
    assert list(got["x"]) == [str(X0 + 100), str(X0 + 900.5)]


@pytest.mark.parametrize(
    "content, needles",
    [
        ("east,north\n1,2\n", ["points.csv", "lon and lat", "--points-crs", "east, north"]),
        ("x,lat\n1,2\n", ["points.csv", "'y'"]),
        ("x,y,elev\n500100,5999900,3\n", ["points.csv", "'elev'", "rename"]),
        ("x,y\n500100,5999900\nabc,5999900\n", ["points.csv", "data row 2", "'abc'"]),
        ("x,y\n500100,\n", ["points.csv", "data row 1", "y"]),
    ],
)
def test_bad_points_are_one_clear_error(tmp_path: Path, content: str, needles: list[str]) -> None:
    case = build_case(tmp_path)
    points = tmp_path / "points.csv"
    points.write_text(content)
    out = tmp_path / "values.csv"
    with pytest.raises(InputError) as caught:  # the CLI prints it as one error: line, exit 2
        sample(case.write_config(), points, out)
    for needle in needles:
        assert needle in str(caught.value), (needle, str(caught.value))
    assert not out.exists()


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    points = tmp_path / "points.csv"
    points.write_text(f"x,y\n{X0 + 100},{Y0 - 100}\n")
    out = tmp_path / "values.csv"
    out.write_text("keep me")
    config = case.write_config()
    proc = run_main("sample", config, points, "-o", out)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: output ") and "already exists" in proc.stderr
    assert out.read_text() == "keep me"
    proc = run_main("sample", config, points, "-o", out, "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().startswith("x,y,elev,slope,ndvi")
    # an existing classified output is no obstacle to sampling
    case.output.write_bytes(b"a finished run")
    assert sample(config, points, tmp_path / "again.csv").points == 1


def test_integer_layers_and_declared_nodata(tmp_path: Path) -> None:
    """uint16 and int16 layers give their integers; nodata.values and NaN give empty."""
    rng = np.random.default_rng(3)
    soil = rng.integers(0, 65535, (20, 30)).astype(np.uint16)
    soil[0, 0] = 65535  # the file's nodata tag
    dem = rng.integers(-500, 3000, (20, 30)).astype(np.int16)
    dem[0, 1] = -32768  # declared in nodata.values
    rain = rng.normal(800, 100, (20, 30)).astype(np.float32)
    rain[0, 2] = np.nan
    stack = Stack(tmp_path / "cov")
    stack.layers += [
        LayerSpec("soil", soil, "uint16", 65535),
        LayerSpec("dem", dem, "int16"),
        LayerSpec("rain", rain),
    ]
    stack.write()
    model = train_model(["dem", "rain", "soil"], {"dem": [1], "rain": [1], "soil": [1]}, [0, 1])
    config = write_yaml(
        tmp_path / "c.yaml",
        {
            "rasters": {"folder": str(stack.folder)},
            "nodata": {"values": [-32768]},
            "model": {"path": str(save_model(model, tmp_path / "m.pkl"))},
            "output": {"path": str(tmp_path / "o.tif")},
        },
    )
    cols = np.array([0, 1, 2, 3, 29])
    points = tmp_path / "p.csv"
    pd.DataFrame({"x": X0 + (cols + 0.5) * RES, "y": Y0 - 0.5 * RES}).to_csv(points, index=False)
    out = tmp_path / "v.csv"
    sample(config, points, out)
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(got.columns) == ["x", "y", "dem", "rain", "soil"]
    assert got["soil"].iloc[0] == "" and got["dem"].iloc[1] == "" and got["rain"].iloc[2] == ""
    for k, c in enumerate(cols[3:], start=3):
        assert got["soil"].iloc[k] == repr(float(soil[0, c]))
        assert got["dem"].iloc[k] == repr(float(dem[0, c]))
        assert np.float32(got["rain"].iloc[k]) == rain[0, c]


def test_reads_only_the_blocks_that_hold_points(tmp_path: Path, monkeypatch) -> None:
    from windowed_classify.commands import sample as sample_mod
    from windowed_classify.inputs.reader import StackReader

    case = build_case(tmp_path, height=64, width=80, layout=("tiled", 16))
    windows = []
    real_read = StackReader.read

    def spy(self, window):
        windows.append(window)
        return real_read(self, window)

    monkeypatch.setattr(StackReader, "read", spy)
    # 3 points in one 16 x 16 block, 2 in another, 1 outside; 20 blocks in all
    px = [(1, 1), (5, 9), (15, 15), (40, 33), (47, 35), (200, 3)]
    points = tmp_path / "p.csv"
    pd.DataFrame(
        {"x": [X0 + (c + 0.5) * RES for c, _ in px], "y": [Y0 - (r + 0.5) * RES for _, r in px]}
    ).to_csv(points, index=False)
    result = sample_mod.sample(case.write_config(), points, tmp_path / "v.csv")
    assert result.reads == len(windows) == 2
    blocks = set()
    for w in windows:  # each read lies inside one block: a bounding box of its points
        r0, c0 = int(w.row_off), int(w.col_off)
        r1, c1 = r0 + int(w.height) - 1, c0 + int(w.width) - 1
        assert (r0 // 16, c0 // 16) == (r1 // 16, c1 // 16)
        blocks.add((r0 // 16, c0 // 16))
    assert blocks == {(0, 0), (2, 2)}
    assert result.outside == [6]


def test_vector_points_are_reprojected(tmp_path: Path) -> None:
    geopandas = pytest.importorskip("geopandas")  # the 'vector' extra, in the 'test' extra
    from rasterio.warp import transform as warp
    from shapely.geometry import Point

    case = build_case(tmp_path)
    rng = np.random.default_rng(5)
    xs = X0 + rng.uniform(0, 45, 40) * RES
    ys = Y0 - rng.uniform(0, 37, 40) * RES
    lon, lat = warp("EPSG:32633", "EPSG:4326", xs, ys)
    gdf = geopandas.GeoDataFrame(
        {"plot": [f"p{i}" for i in range(40)]},
        geometry=[Point(a, b) for a, b in zip(lon, lat, strict=True)],
        crs="EPSG:4326",
    )
    points = tmp_path / "plots.gpkg"
    gdf.to_file(points, engine="pyogrio")
    out = tmp_path / "v.csv"
    proc = run_main("sample", case.write_config(), points, "-o", out)
    assert proc.returncode == 0, proc.stderr
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(got.columns) == ["plot", "x", "y", "elev", "slope", "ndvi"]
    # the x/y written are the points in the rasters' CRS (round trip through degrees)
    assert np.allclose(got["x"].astype(float), xs, atol=1e-3)
    back_x, back_y = got["x"].astype(float).to_numpy(), got["y"].astype(float).to_numpy()
    expected = expected_values(case, ["elev", "slope", "ndvi"], back_x, back_y)
    for i, row in enumerate(expected):
        for name, want in zip(["elev", "slope", "ndvi"], row, strict=True):
            text = got[name].iloc[i]
            assert (text == "") if want is None else (np.float32(text) == want), (i, name)


def test_vector_without_the_extra_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    case = build_case(tmp_path)
    points = tmp_path / "plots.gpkg"
    points.write_bytes(b"not read: the import fails first")
    monkeypatch.setitem(sys.modules, "geopandas", None)  # import geopandas -> ImportError
    with pytest.raises(InputError, match=r"plots\.gpkg.*windowed_classify\[vector\]"):
        sample(case.write_config(), points, tmp_path / "v.csv")


def test_rasters_are_opened_like_a_run(tmp_path: Path) -> None:
    """The model's missing feature is the run's error (sampling needs every feature)."""
    case = build_case(tmp_path, names=("elev", "slope", "ndvi"))
    (case.folder / "slope.tif").unlink()
    points = tmp_path / "p.csv"
    points.write_text(f"x,y\n{X0 + 100},{Y0 - 100}\n")
    with pytest.raises(InputError, match="expects .* slope"):
        sample(case.write_config(), points, tmp_path / "v.csv")
    assert not (tmp_path / "v.csv").exists()
