"""Inputs as mappers have them: multi-band files and VRTs, the model's reference grid, rasters
without a CRS, feature order without names, numeric class codes (issue #12).

Every run is compared with the in-memory notebook (reference.py) run on the same bands split
into single-band files: the tool's multi-band reading must change nothing.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from checks import assert_codes_equal
from helpers import (
    DEFAULT_TRANSFORM,
    load_report,
    make_config,
    read_output,
    run_main,
    save_model,
    train_model,
    write_multiband,
    write_raster,
    write_yaml,
)
from rasterio.transform import from_origin
from reference import reference_run
from warp_reference import oracle_folder

import windowed_classify
from windowed_classify.errors import ConfigError, InputError

ENGINES = {
    "serial": {"workers": 1},
    "threads": {"workers": 2, "engine": "threads"},
    "processes": {"workers": 2, "engine": "processes"},
}
H, W = 41, 53
LABELS = ("forest", "water", "urban")


def field(rng: np.random.Generator, offset: float, holes: float = 0.05, hole: float = -9999.0):
    data = (offset + rng.normal(0, 10, (H, W))).astype(np.float32)
    data[rng.random((H, W)) < holes] = hole
    return data


def split_bands(layers: dict[str, tuple[np.ndarray, float | None]], folder: Path) -> Path:
    """The same layers as single-band files (each with its band's nodata tag): what the
    notebook reads."""
    for name, (data, nodata) in layers.items():
        write_raster(folder / f"{name}.tif", data, nodata=nodata)
    return folder


def multiband_stack(root: Path, seed: int = 0) -> tuple[Path, dict[str, tuple[np.ndarray, Any]]]:
    """A folder of one single-band file, a 3-band file with unique descriptions, a 2-band
    file without (its layers are <stem>_1, <stem>_2), a band-interleaved 2-band file whose
    descriptions repeat, and a VRT with a nodata value per band. Returns the folder and
    every layer's (values, nodata tag)."""
    rng = np.random.default_rng(seed)
    folder = root / "multi"
    layers: dict[str, tuple[np.ndarray, Any]] = {}
    elev = field(rng, 100)
    write_raster(folder / "elev.tif", elev, nodata=-9999.0)
    layers["elev"] = (elev, -9999.0)
    bands = [field(rng, 200 + 10 * i) for i in range(3)]
    write_multiband(
        folder / "landsat.tif", bands, descriptions=["red", "nir", "swir"], nodata=-9999.0
    )
    layers |= {d: (b, -9999.0) for d, b in zip(["red", "nir", "swir"], bands, strict=True)}
    terrain = [field(rng, 50, hole=-1.0), field(rng, 60, hole=-1.0)]
    write_multiband(folder / "terrain.tif", terrain, nodata=-1.0)
    layers |= {f"terrain_{i}": (b, -1.0) for i, b in enumerate(terrain, 1)}
    same = [field(rng, 5), field(rng, 7)]
    write_multiband(
        folder / "sub" / "dup.tif", same, descriptions=["x", "x"], nodata=-9999.0, interleave="band"
    )
    layers |= {f"dup_{i}": (b, -9999.0) for i, b in enumerate(same, 1)}
    # A VRT of two single-band files, each band with its own nodata value.
    parts = {"v1": field(rng, 30, hole=-7.0), "v2": field(rng, 40, hole=-8.0)}
    srcs = {}
    for name, data in parts.items():
        srcs[name] = write_raster(root / "vrt_sources" / f"{name}.tif", data)
    vrt_bands = "".join(
        f'<VRTRasterBand dataType="Float32" band="{i}"><NoDataValue>{nd}</NoDataValue>'
        f'<SimpleSource><SourceFilename relativeToVRT="0">{srcs[name]}</SourceFilename>'
        f"<SourceBand>1</SourceBand></SimpleSource></VRTRasterBand>"
        for i, (name, nd) in enumerate([("v1", -7.0), ("v2", -8.0)], 1)
    )
    t = DEFAULT_TRANSFORM
    (folder / "stackv.vrt").write_text(
        f'<VRTDataset rasterXSize="{W}" rasterYSize="{H}"><SRS>EPSG:32633</SRS>'
        f"<GeoTransform>{t.c}, {t.a}, {t.b}, {t.f}, {t.d}, {t.e}</GeoTransform>{vrt_bands}"
        "</VRTDataset>",
        encoding="utf-8",
    )
    layers["stackv_1"] = (parts["v1"], -7.0)
    layers["stackv_2"] = (parts["v2"], -8.0)
    return folder, layers


MODEL_FEATURES = ["nir", "elev", "terrain_2", "stackv_1", "dup_2", "red", "stackv_2"]


@pytest.fixture(scope="module")
def multiband(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("multiband")
    folder, layers = multiband_stack(root)
    split = split_bands({n: layers[n] for n in MODEL_FEATURES}, root / "split")
    pools = {n: v[v > -1].ravel() for n, (v, _) in layers.items()}
    model = train_model(MODEL_FEATURES, pools, LABELS, kind="forest", seed=3)
    model_path = save_model(model, root / "model.pkl")
    return {
        "root": root,
        "folder": folder,
        "split": split,
        "model": model,
        "model_path": model_path,
        "layers": layers,
    }


@pytest.mark.parametrize(
    ("threshold", "engine"),
    # one dask run is enough: starting a cluster costs seconds
    [(t, e) for t in (0, 2) for e in ENGINES] + [(0, "dask")],
)
def test_multiband_stack_equals_the_notebook_on_split_bands(
    multiband: dict[str, Any], tmp_path: Path, engine: str, threshold: int
) -> None:
    processing = ENGINES.get(engine, {"workers": 2, "engine": "dask"})
    out = tmp_path / "out" / "prediction.tif"
    cfg = make_config(
        multiband["folder"],
        multiband["model_path"],
        out,
        rasters={"extensions": [".tif", ".vrt"]},
        nodata={"values": [], "threshold": threshold},
        processing={**processing, "stats_cache": False},
    )
    report = windowed_classify.run(cfg)
    ref = reference_run(
        multiband["split"], multiband["model"], nodata_values=[], threshold=threshold
    )
    codes, _ = read_output(out)
    assert_codes_equal(codes, ref.codes)
    for name, stats in ref.layers.items():
        got = report["layers"][name]
        assert np.float32(got["median"]) == stats.median, name
        assert (got["valid_count"], got["nodata_count"]) == (stats.valid_count, stats.nodata_count)
    assert report["features"] == MODEL_FEATURES
    assert set(report["ignored_layers"]) == {"swir", "terrain_1", "dup_1"}
    assert report["layers"]["nir"]["path"].endswith("landsat.tif")
    assert report["layers"]["nir"]["band"] == 2


def test_layer_names_per_band_and_duplicates_name_files_and_bands(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    folder = tmp_path / "c"
    write_multiband(folder / "a.tif", [field(rng, 1), field(rng, 2)], descriptions=["b", None])
    write_raster(folder / "b.tif", field(rng, 3))  # a layer "b", as a.tif's band 1 is
    model = train_model(["b", "a_2"], {"b": np.arange(9.0), "a_2": np.arange(9.0)}, LABELS)
    model_path = save_model(model, tmp_path / "m.pkl")
    with pytest.raises(InputError) as err:
        windowed_classify.run(make_config(folder, model_path, tmp_path / "o.tif"))
    message = str(err.value)
    assert "two layers have the feature name 'b'" in message
    assert "a.tif band 1" in message and "b.tif" in message
    assert "rasters.band_names: stem" in message  # the key that tells them apart


def test_rasters_files_can_name_one_band(multiband: dict[str, Any], tmp_path: Path) -> None:
    folder = multiband["folder"]
    files = {
        "nir": {"path": str(folder / "landsat.tif"), "band": 2},
        "red": {"path": str(folder / "landsat.tif"), "band": 1},
        "elev": str(folder / "elev.tif"),
        "terrain": str(folder / "terrain.tif"),  # both bands: terrain_1, terrain_2
        "dup": {"path": str(folder / "sub" / "dup.tif"), "band": 2},
        "stackv_1": {"path": str(folder / "stackv.vrt"), "band": 1},
        "stackv_2": {"path": str(folder / "stackv.vrt"), "band": 2},
    }
    model = train_model(
        ["nir", "elev", "terrain_2", "stackv_1", "dup", "red", "stackv_2"],
        {
            n: np.arange(50.0)
            for n in ["nir", "elev", "terrain_2", "stackv_1", "dup", "red", "stackv_2"]
        },
        LABELS,
        seed=2,
    )
    out = tmp_path / "o.tif"
    model_path = str(save_model(model, tmp_path / "m.pkl"))
    cfg = {
        "rasters": {"files": files},
        "model": {"path": model_path},
        "output": {"path": str(out)},
        "nodata": {"values": []},
    }
    report = windowed_classify.run(cfg)
    assert report["layers"]["dup"]["band"] == 2
    assert report["ignored_layers"] == ["terrain_1"]
    bad = {**cfg, "rasters": {"files": {**files, "nir": {"path": files["elev"], "band": 3}}}}
    bad["output"] = {"path": str(tmp_path / "o2.tif")}
    with pytest.raises(ConfigError, match=r"rasters.files.nir.band': 3, but .*elev.tif has 1"):
        windowed_classify.run(bad)


def test_check_and_sample_show_one_entry_per_band(
    multiband: dict[str, Any], tmp_path: Path
) -> None:
    cfg = make_config(
        multiband["folder"],
        multiband["model_path"],
        tmp_path / "o.tif",
        rasters={"extensions": [".tif", ".vrt"]},
        nodata={"values": []},
    )
    config = write_yaml(tmp_path / "c.yaml", cfg)
    proc = run_main("check", config)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in [
        "red",
        "nir",
        "swir",
        "terrain_1",
        "terrain_2",
        "dup_1",
        "dup_2",
        "stackv_1",
        "stackv_2",
        "elev",
    ]:
        assert f" {name} " in proc.stdout, name
    assert "landsat.tif  2 " in proc.stdout  # the band column
    points = tmp_path / "p.csv"
    t = DEFAULT_TRANSFORM
    points.write_text(f"id,x,y\n1,{t.c + 85},{t.f - 85}\n", encoding="utf-8")
    out = tmp_path / "s.csv"
    proc = run_main("sample", config, points, "-o", out)
    assert proc.returncode == 0, proc.stderr
    header = out.read_text().splitlines()[0].split(",")
    assert header[3 : 3 + len(MODEL_FEATURES)] == MODEL_FEATURES  # the model's order first
    assert set(header[3:]) == set(multiband["layers"])
    row = dict(zip(header, out.read_text().splitlines()[1].split(","), strict=True))
    for name, (data, nodata) in multiband["layers"].items():
        value = data[1, 1]
        assert row[name] == ("" if value == nodata else repr(float(value))), name


def test_the_statistics_cache_is_per_band_and_touching_a_file_recomputes_its_bands(
    multiband: dict[str, Any], tmp_path: Path
) -> None:
    import shutil

    folder = tmp_path / "stack"
    shutil.copytree(multiband["folder"], folder)
    cfg = make_config(
        folder,
        multiband["model_path"],
        tmp_path / "o.tif",
        rasters={"extensions": [".tif", ".vrt"]},
        nodata={"values": []},
        output={"overwrite": True},
        processing={"cache_dir": str(tmp_path / "cache")},
    )
    assert windowed_classify.run(cfg)["stats_cache"] == "computed"
    assert windowed_classify.run(cfg)["stats_cache"] == "used"
    landsat = folder / "landsat.tif"
    with rasterio.open(landsat, "r+") as ds:  # same values, a new modification time
        ds.update_tags(touched="yes")
    report = windowed_classify.run(cfg)
    assert report["stats_cache"] == "partly used"
    assert len(list((tmp_path / "cache").glob("*.json"))) == len(MODEL_FEATURES) + 2


# ----------------------------------------------------------------------------- the grid


def test_unused_rasters_off_the_grid_unreadable_or_without_crs_do_not_stop_a_run(
    multiband: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import shutil

    folder = tmp_path / "stack"
    shutil.copytree(multiband["folder"], folder)
    # alphabetically first, on another grid and without a CRS: the old reference grid
    write_raster(
        folder / "aaa_dem.tif",
        np.zeros((10, 12), np.float32),
        crs=None,
        transform=from_origin(0, 0, 1, 1),
    )
    (folder / "broken.tif").write_bytes(b"II*\x00 not a tiff")
    out = tmp_path / "o.tif"
    cfg = make_config(
        folder,
        multiband["model_path"],
        out,
        rasters={"extensions": [".tif", ".vrt"]},
        nodata={"values": []},
    )
    report = windowed_classify.run(cfg)
    assert "aaa_dem" in report["ignored_layers"] and "broken" in report["ignored_layers"]
    assert "aaa_dem (not on the model's grid)" in caplog.text
    assert "broken (cannot be opened" in caplog.text
    with rasterio.open(out) as ds:
        assert ds.crs == "EPSG:32633" and (ds.width, ds.height) == (W, H)


def test_model_layers_off_the_grid_name_the_grid_most_model_layers_share(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    folder = tmp_path / "c"
    for name in ("a", "b", "c"):
        write_raster(folder / f"{name}.tif", field(rng, 1))
    for name in ("d", "e"):  # alphabetically last, coarser
        write_raster(
            folder / f"{name}.tif",
            field(rng, 1)[::2, ::2].copy(),
            transform=from_origin(500000, 6000000, 160, 160),
        )
    model = train_model(["d", "a", "b", "c", "e"], {n: np.arange(9.0) for n in "abcde"}, LABELS)
    cfg = make_config(folder, save_model(model, tmp_path / "m.pkl"), tmp_path / "o.tif")
    with pytest.raises(InputError) as err:
        windowed_classify.run(cfg)
    message = str(err.value)
    assert message.startswith("2 files are not on the grid 3 of 5 model layers share")
    assert "d.tif: transform resolution 160 x 160 (expected 80 x 80)" in message
    assert "e.tif:" in message and "rasters.align: true" in message
    assert not (tmp_path / "o.tif").parent.joinpath("o.tif").exists()


# ----------------------------------------------------------------------------- no CRS


def crsless_stack(root: Path, seed: int = 5, coarse: str | None = None) -> Path:
    rng = np.random.default_rng(seed)
    folder = root / "nocrs"
    t = from_origin(178000, 334000, 40, 40)
    for name in ("dem", "dist", "soil"):
        write_raster(
            folder / f"{name}.tif",
            field(rng, 10, hole=-99999.0),
            crs=None,
            transform=t,
            nodata=-99999.0,
        )
    if coarse:
        data = field(rng, 10, hole=-99999.0)[::2, ::2].copy()
        write_raster(
            folder / f"{coarse}.tif",
            data,
            crs=None,
            nodata=-99999.0,
            transform=from_origin(178000, 334000, 80, 80),
        )
    return folder


def test_rasters_without_crs_share_a_grid_by_transform_and_shape(tmp_path: Path) -> None:
    folder = crsless_stack(tmp_path)
    model = train_model(
        ["soil", "dem", "dist"],
        {n: np.arange(-5.0, 30) for n in ("soil", "dem", "dist")},
        LABELS,
        seed=1,
    )
    model_path = save_model(model, tmp_path / "m.pkl")
    out = tmp_path / "o.tif"
    windowed_classify.run(make_config(folder, model_path, out))
    ref = reference_run(folder, model, nodata_values=[])
    codes, info = read_output(out)
    assert_codes_equal(codes, ref.codes)
    assert info["crs"] is None


@pytest.mark.parametrize("method", ["nearest", "bilinear"])
def test_align_warps_crsless_layers_by_transform(tmp_path: Path, method: str) -> None:
    folder = crsless_stack(tmp_path, coarse="twi")
    features = ["twi", "soil", "dem", "dist"]
    model = train_model(features, {n: np.arange(-5.0, 30) for n in features}, LABELS, seed=2)
    model_path = save_model(model, tmp_path / "m.pkl")
    out = tmp_path / "o.tif"
    cfg = make_config(folder, model_path, out, rasters={"align": True, "resampling": method})
    windowed_classify.run(cfg)
    warped = oracle_folder(folder, tmp_path / "warped", folder / "dem.tif", {"twi": method})
    ref = reference_run(warped, model, nodata_values=[])
    codes, _ = read_output(out)
    assert_codes_equal(codes, ref.codes)


@pytest.mark.parametrize("align", [False, True])
def test_a_mix_of_layers_with_and_without_a_crs_is_one_clear_error(
    tmp_path: Path, align: bool
) -> None:
    folder = crsless_stack(tmp_path)
    with rasterio.open(folder / "dem.tif") as ds:
        profile, data = ds.profile, ds.read(1)
    profile["crs"] = "EPSG:28992"
    with rasterio.open(folder / "dist.tif", "w", **profile) as ds:
        ds.write(data, 1)
    model = train_model(["dem", "dist"], {"dem": np.arange(9.0), "dist": np.arange(9.0)}, LABELS)
    cfg = make_config(
        folder,
        save_model(model, tmp_path / "m.pkl"),
        tmp_path / "o" / "p.tif",
        rasters={"align": align},
    )
    proc = run_main(write_yaml(tmp_path / "c.yaml", cfg))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("error:"))
    assert "dist.tif (EPSG:28992)" in line and "dem.tif" in line and "gdal_edit.py -a_srs" in line
    assert not (tmp_path / "o").exists()  # the folder it made is gone again
    proc = run_main("check", write_yaml(tmp_path / "c.yaml", cfg))
    assert proc.returncode == 2 and "gdal_edit.py -a_srs" in proc.stdout


# ----------------------------------------------------------------------------- feature order


def test_a_model_without_feature_names_gets_an_array_and_the_order_is_said_to_be_trusted(
    multiband: dict[str, Any], tmp_path: Path
) -> None:
    pools = {n: v[v > -1].ravel() for n, (v, _) in multiband["layers"].items()}
    model = train_model(MODEL_FEATURES, pools, LABELS, kind="forest", seed=4, with_names=False)
    model_path = save_model(model, tmp_path / "m.pkl")
    out = tmp_path / "o.tif"
    cfg = make_config(
        multiband["folder"],
        model_path,
        out,
        rasters={"extensions": [".tif", ".vrt"]},
        nodata={"values": []},
        model={"features": MODEL_FEATURES},
        processing={"workers": 1},
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = windowed_classify.run(cfg)
    assert not [w for w in caught if "feature names" in str(w.message)]
    assert report["feature_order_from_names"] is False
    ref = reference_run(multiband["split"], model, nodata_values=[], features=MODEL_FEATURES)
    assert_codes_equal(read_output(out)[0], ref.codes)
    proc = run_main(
        "check",
        write_yaml(tmp_path / "c.yaml", {**cfg, "output": {"path": str(tmp_path / "o2.tif")}}),
    )
    assert "column order is taken on trust from model.features" in proc.stdout
    named = {
        **cfg,
        "model": {"path": str(multiband["model_path"]), "features": list(reversed(MODEL_FEATURES))},
    }
    named["output"] = {"path": str(tmp_path / "o3.tif")}
    with pytest.raises(windowed_classify.UserError, match="disagree on the features"):
        windowed_classify.run(named)


# ----------------------------------------------------------------------------- class codes


@pytest.mark.parametrize("labels", [(1, 2, 3), (10, 20, 30)])
def test_integer_labels_are_written_as_themselves_with_codes_label(
    tmp_path: Path, labels: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(6)
    folder = tmp_path / "c"
    for name in ("a", "b"):
        write_raster(folder / f"{name}.tif", field(rng, 0, hole=-9999.0), nodata=-9999.0)
    model = train_model(
        ["a", "b"],
        {"a": np.arange(-20.0, 20), "b": np.arange(-20.0, 20)},
        labels,
        kind="forest",
        seed=5,
    )
    out = tmp_path / "o.tif"
    proba = str(tmp_path / "p.tif")
    cfg = make_config(
        folder,
        save_model(model, tmp_path / "m.pkl"),
        out,
        output={"codes": "label", "probabilities": proba},
    )
    report = windowed_classify.run(cfg)
    ref = reference_run(folder, model, nodata_values=[])
    index = read_output(out)[0]
    expected = np.where(ref.masked, 255, np.asarray(labels)[np.minimum(ref.codes, 2)])
    assert_codes_equal(index, expected.astype(np.uint8))
    assert report["legend"] == {str(v): str(v) for v in labels}
    assert set(report["pixel_counts"]) == {*map(str, labels), "255"}
    with rasterio.open(out) as ds:
        assert {c for c in labels} <= set(ds.colormap(1))
    with rasterio.open(tmp_path / "p.tif") as ds:
        assert [ds.tags(i)["code"] for i in (1, 2, 3)] == [str(v) for v in labels]
    qml = (tmp_path / "o.qml").read_text()
    assert all(f'value="{v}"' in qml for v in labels)
    legend = (tmp_path / "o.legend.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in legend[1:]] == [str(v) for v in labels]


@pytest.mark.parametrize(
    ("labels", "output", "words"),
    [
        ((1, 300), {}, "class label 300 (the model's classes_) does not fit output.dtype uint8"),
        ((1, 255), {}, "class label 255 (the model's classes_) is output.nodata 255"),
        (("a", "b"), {}, "output.codes': label writes integer class labels as themselves"),
    ],
)
def test_codes_label_refuses_labels_that_do_not_fit_before_any_work(
    tmp_path: Path, labels: tuple[Any, ...], output: dict[str, Any], words: str
) -> None:
    folder = tmp_path / "c"
    write_raster(folder / "a.tif", np.arange(20, dtype=np.float32).reshape(4, 5))
    model = train_model(["a"], {"a": np.arange(20.0)}, labels)
    cfg = make_config(
        folder,
        save_model(model, tmp_path / "m.pkl"),
        tmp_path / "out" / "o.tif",
        output={"codes": "label", **output},
    )
    proc = run_main(write_yaml(tmp_path / "c.yaml", cfg))
    assert proc.returncode == 2 and words in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_report_json_keeps_band_and_trust_fields_parseable(
    multiband: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "o.tif"
    cfg = make_config(
        multiband["folder"],
        multiband["model_path"],
        out,
        rasters={"extensions": [".tif", ".vrt"]},
        nodata={"values": []},
    )
    windowed_classify.run(cfg)
    report = json.loads((tmp_path / "o.report.json").read_text())
    assert report == load_report(out)
    assert report["feature_order_from_names"] is True
