"""rasters.align: misfit layers warped onto the reference grid, window by window.

The oracle is the same warp done in memory (tests/warp_reference.py): each misfit layer is
read whole, its nodata (NaN, +-inf, nodata.values, the file's tag) set to NaN, and
rasterio.warp.reproject'ed in one call onto the reference grid (NaN as source and destination
nodata); the warped stack then goes through the in-memory notebook (tests/reference.py), and
the tool's output must equal it pixel for pixel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from checks import assert_run_matches
from helpers import (
    AZURE_NODATA,
    DEFAULT_TRANSFORM,
    make_config,
    run_main,
    save_model,
    train_model,
    write_raster,
    write_yaml,
)
from rasterio.transform import Affine, from_origin
from rasterio.windows import Window
from reference import nodata_mask, reference_run
from warp_reference import oracle_folder, warp_in_memory

from windowed_classify import run
from windowed_classify.config import RastersConfig, load_config
from windowed_classify.errors import ConfigError, UserError
from windowed_classify.inputs.discover import discover
from windowed_classify.inputs.layers import list_bands, open_layers
from windowed_classify.inputs.reader import StackReader
from windowed_classify.passes.statscache import layer_key

X0, Y0 = DEFAULT_TRANSFORM.c, DEFAULT_TRANSFORM.f  # 80 m pixels
FILE_NODATA = -9999.0


def misfit_layers(height: int, width: int, seed: int = 0) -> dict[str, tuple[np.ndarray, Affine]]:
    """elev on the reference grid; slope at twice the pixel size (its extent stops short of
    the grid's right side); ndvi shifted by half a pixel. Each has the file's nodata tag, NaN
    and the Azure nodata value scattered in."""
    rng = np.random.default_rng(seed)

    def field(h: int, w: int, mean: float) -> np.ndarray:
        yy, xx = np.mgrid[0:h, 0:w]
        data = mean + 20 * np.sin(xx / 7.0) + 15 * np.cos(yy / 5.0) + rng.normal(0, 5, (h, w))
        data = np.round(data, 2).astype(np.float32)
        data[rng.random((h, w)) < 0.05] = FILE_NODATA
        data[rng.random((h, w)) < 0.02] = np.nan
        data[rng.random((h, w)) < 0.02] = np.float32(AZURE_NODATA)
        return data

    half = (height + 1) // 2, (width + 1) // 2 - 3
    return {
        "elev": (field(height, width, 100), DEFAULT_TRANSFORM),
        "slope": (field(*half, 200), from_origin(X0 - 40, Y0 + 40, 160, 160)),
        "ndvi": (field(height, width, 300), from_origin(X0 + 40, Y0 - 40, 80, 80)),
    }


def write_layers(folder: Path, layers: dict[str, tuple[np.ndarray, Affine]]) -> None:
    for name, (data, transform) in layers.items():
        write_raster(folder / f"{name}.tif", data, nodata=FILE_NODATA, transform=transform)


def aligned_case(root: Path, height: int, width: int, methods: dict[str, str]):
    layers = misfit_layers(height, width)
    folder = root / "covariates"
    write_layers(folder, layers)
    oracle = oracle_folder(folder, root / "oracle", folder / "elev.tif", methods)
    pools = {}
    for name in layers:
        with rasterio.open(oracle / f"{name}.tif") as src:
            values = src.read(1).astype(np.float32)
            pools[name] = values[~nodata_mask(values, src.nodata, [AZURE_NODATA])]
    model = train_model(list(layers), pools, ["low", "mid", "high"], kind="forest", seed=3)
    model_path = save_model(model, root / "model.pkl")
    return folder, oracle, model, model_path


# --------------------------------------------------------------------------- whole runs


@pytest.mark.parametrize(
    ("resampling", "processing"),
    [
        ("nearest", {"workers": 1}),
        ("bilinear", {"workers": 2, "engine": "threads"}),
        ("cubic", {"workers": 1}),
        ({"default": "bilinear", "ndvi": "nearest"}, {"workers": 2, "engine": "processes"}),
    ],
)
def test_align_equals_in_memory_warp(
    tmp_path: Path, resampling: Any, processing: dict[str, Any]
) -> None:
    """Twice the pixel size and half a pixel off, over several pass-2 windows and engines."""
    methods = (
        dict.fromkeys(("elev", "slope", "ndvi"), resampling)
        if isinstance(resampling, str)
        else {n: resampling.get(n, resampling["default"]) for n in ("elev", "slope", "ndvi")}
    )
    folder, oracle, model, model_path = aligned_case(tmp_path, 300, 280, methods)
    out = tmp_path / "out" / "prediction.tif"
    cfg = make_config(
        folder,
        model_path,
        out,
        rasters={"align": True, "resampling": resampling},
        processing={"memory_mb": 1, **processing},
    )
    report = run(cfg)
    assert report["windows"] > 1
    ref = reference_run(oracle, model, nodata_values=[AZURE_NODATA])
    assert_run_matches(report, ref, out)
    assert ref.layers["slope"].nodata_count > 0  # beyond the slope layer's extent


def test_align_onto_reference_file(tmp_path: Path) -> None:
    """rasters.reference: every layer is warped onto a grid that none of them has."""
    methods = dict.fromkeys(("elev", "slope", "ndvi"), "bilinear")
    folder, _, model, model_path = aligned_case(tmp_path, 40, 50, methods)
    ref_path = tmp_path / "grid" / "reference.tif"
    write_raster(
        ref_path, np.zeros((33, 41), np.uint8), transform=from_origin(X0 + 100, Y0 - 60, 100, 100)
    )
    oracle = oracle_folder(folder, tmp_path / "oracle2", ref_path, methods)
    out = tmp_path / "out.tif"
    cfg = make_config(
        folder,
        model_path,
        out,
        rasters={"align": True, "reference": str(ref_path), "resampling": "bilinear"},
        processing={"workers": 1},
    )
    report = run(cfg)
    ref = reference_run(oracle, model, nodata_values=[AZURE_NODATA])
    assert (ref.width, ref.height) == (41, 33)
    assert_run_matches(report, ref, out)


# --------------------------------------------------------------------------- window reads


METHODS = ["nearest", "bilinear", "cubic", "cubic_spline", "lanczos", "mode", "max", "med"]
SOURCES = {  # (transform, (height, width), exact) of the misfit layer; the grid: 37 x 45, 80 m
    "twice the pixel size": (from_origin(X0 - 40, Y0 + 40, 160, 160), (21, 25), True),
    "half a pixel off": (from_origin(X0 + 40, Y0 - 40, 80, 80), (37, 45), True),
    "half the pixel size": (from_origin(X0, Y0, 40, 40), (75, 91), True),
    # 57 x 61 m onto 80 m: the window's own origin rounds differently from the layer's in
    # GDAL's inverse transform, so a kernel weight can differ in its last bit (README)
    "odd pixel size": (from_origin(X0 - 10, Y0 + 13, 57, 61), (50, 65), False),
}
TILINGS = [(16, 16), (7, 5), (45, 1), (1, 37), (3, 3), (45, 37)]


@pytest.mark.parametrize("source", list(SOURCES))
def test_window_reads_equal_whole_warp_for_every_tiling(tmp_path: Path, source: str) -> None:
    height, width = 37, 45
    rng = np.random.default_rng(len(source))
    transform, shape, exact = SOURCES[source]
    data = rng.normal(100, 30, shape).astype(np.float32)
    data[rng.random(shape) < 0.08] = FILE_NODATA
    data[rng.random(shape) < 0.04] = np.nan
    data[rng.random(shape) < 0.04] = np.float32(AZURE_NODATA)
    folder = tmp_path / "stack"
    write_raster(folder / "a_ref.tif", np.zeros((height, width), np.float32))
    write_raster(folder / "b.tif", data, nodata=FILE_NODATA, transform=transform)
    for method in METHODS:
        rasters = RastersConfig(folder=folder, align=True, resampling={"default": method})
        cfg = load_config(make_config(folder, "m.pkl", tmp_path / "o.tif"))
        grid, layers = open_layers(list_bands(discover(rasters)).bands, cfg.nodata, rasters)
        layer = layers[1]
        assert layer.warp is not None and layers[0].warp is None
        whole = warp_in_memory(folder / "b.tif", folder / "a_ref.tif", method)
        for tw, th in TILINGS:
            got = np.full((height, width), -1.0, np.float32)
            with StackReader([layer]) as reader:
                for r in range(0, height, th):
                    for c in range(0, width, tw):
                        win = Window(c, r, min(tw, width - c), min(th, height - r))
                        values, invalid = reader.read(win)
                        block = np.where(invalid[0], np.nan, values[0])
                        got[r : r + win.height, c : c + win.width] = block.reshape(
                            win.height, win.width
                        )
            where = f"{source}, {method}, {tw}x{th}"
            if exact or method == "nearest":
                np.testing.assert_array_equal(got, whole, err_msg=where)
            else:  # same nodata pixels, values within float32 rounding
                np.testing.assert_array_equal(np.isnan(got), np.isnan(whole), err_msg=where)
                np.testing.assert_allclose(got, whole, rtol=2e-7, err_msg=where)


def test_layer_on_the_grid_is_not_warped(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    write_layers(folder, misfit_layers(20, 24))
    cfg = load_config(make_config(folder, "m.pkl", tmp_path / "o.tif", rasters={"align": True}))
    grid, layers = open_layers(list_bands(discover(cfg.rasters)).bands, cfg.nodata, cfg.rasters)
    by_name = {la.name: la for la in layers}
    assert by_name["elev"].warp is None
    assert by_name["ndvi"].warp is not None and by_name["slope"].warp is not None
    assert by_name["slope"].block_shape == by_name["elev"].block_shape
    assert (grid.width, grid.height) == (24, 20)


def test_stats_cache_key_includes_the_warp(tmp_path: Path) -> None:
    """A warped layer's statistics are never taken for the raw file's, nor another warp's."""
    folder = tmp_path / "c"
    write_layers(folder, misfit_layers(20, 24))
    keys = set()
    for settings in (
        {"align": False},
        {"align": True},
        {"align": True, "resampling": "bilinear"},
    ):
        cfg = load_config(make_config(folder, "m.pkl", tmp_path / "o.tif", rasters=settings))
        named = list_bands(discover(cfg.rasters)).bands
        if not settings["align"]:
            named = [band for band in named if band.name == "ndvi"]
        _, layers = open_layers(named, cfg.nodata, cfg.rasters)
        keys.add(layer_key(next(la for la in layers if la.name == "ndvi")))
    assert len(keys) == 3


# --------------------------------------------------------------------------- errors


def test_misfit_without_align_names_what_differs(tmp_path: Path) -> None:
    methods = dict.fromkeys(("elev", "slope", "ndvi"), "nearest")
    folder, _, _, model_path = aligned_case(tmp_path, 20, 24, methods)
    write_raster(folder / "ndvi.tif", np.ones((20, 24), np.float32))  # back on the grid
    out = tmp_path / "out.tif"
    proc = run_main(write_yaml(tmp_path / "c.yaml", make_config(folder, model_path, out)))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert "1 file is not on" in line and "rasters.align: true" in line
    (detail,) = [ln for ln in proc.stderr.splitlines() if "slope.tif" in ln]  # a line a file
    for needle in ("resolution 160 x 160", "expected 80 x 80", "origin", "shape"):
        assert needle in detail, (needle, detail)
    assert not out.exists()


def test_crs_difference_named(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    write_raster(folder / "a.tif", np.zeros((8, 8), np.float32))
    write_raster(folder / "b.tif", np.zeros((8, 8), np.float32), crs="EPSG:32634")
    cfg = load_config(make_config(folder, "m.pkl", tmp_path / "o.tif"))
    with pytest.raises(
        UserError, match=r"(?s)rasters\.align.*CRS EPSG:32634 \(expected EPSG:32633\)"
    ):
        open_layers(list_bands(discover(cfg.rasters)).bands, cfg.nodata, cfg.rasters)


@pytest.mark.parametrize(
    ("rasters", "needle"),
    [
        ({"align": True, "resampling": "sideways"}, "rasters.resampling"),
        (
            {"align": True, "resampling": {"default": "bilinear", "ndvi": 3}},
            "rasters.resampling.ndvi",
        ),
        ({"align": True, "resampling": {"nosuch": "bilinear"}}, "nosuch"),
        ({"resampling": "bilinear"}, "rasters.resampling"),
        ({"reference": "grid.tif"}, "rasters.reference"),
        ({"align": True, "reference": "missing.tif"}, "rasters.reference"),
        ({"align": "yes"}, "rasters.align"),
    ],
)
def test_align_config_errors(tmp_path: Path, rasters: dict[str, Any], needle: str) -> None:
    folder = tmp_path / "c"
    write_layers(folder, misfit_layers(20, 24))
    with pytest.raises(UserError) as info:
        cfg = load_config(make_config(folder, "m.pkl", tmp_path / "o.tif", rasters=rasters))
        open_layers(list_bands(discover(cfg.rasters)).bands, cfg.nodata, cfg.rasters)
    assert needle in str(info.value)
    if needle != "rasters.reference" or "missing" not in str(rasters):
        assert isinstance(info.value, ConfigError)
