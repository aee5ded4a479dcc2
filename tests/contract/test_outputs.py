"""Probability and confidence rasters, COG layout, the class style sidecars."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import joblib
import numpy as np
import pandas as pd
import pytest
import rasterio
from checks import assert_codes_equal
from helpers import Case, build_case, run_main
from reference import nodata_mask, read_layer, reference_from_config
from sklearn.linear_model import RidgeClassifier

from windowed_classify import run
from windowed_classify.models.task import predicts_by_argmax
from windowed_classify.outputs.style import palette


def _with_outputs(case: Case, **output: Any) -> dict[str, Any]:
    cfg = dict(case.config)
    cfg["output"] = {**cfg["output"], **output}
    return cfg


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def _expected_proba(case: Case, report: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """predict_proba over the whole stack in memory, nodata filled with the report's medians,
    columns in code order; and the masked pixels."""
    features = report["features"]
    columns, masks = {}, {}
    for spec in case.stack.layers:
        values, file_nodata, _ = read_layer(case.folder / spec.relpath)
        mask = nodata_mask(values, file_nodata, case.config["nodata"]["values"], True)
        filled = values.copy()
        filled[mask] = np.float32(report["layers"][spec.name]["median"])
        columns[spec.name], masks[spec.name] = filled.ravel(), mask.ravel()
    masked = np.any([masks[f] for f in features], axis=0)
    frame = pd.DataFrame({f: columns[f][~masked] for f in features}, columns=features)
    raw = case.model.predict_proba(frame)
    order = [list(case.model.classes_).index(label) for label in report["legend"].values()]
    return raw[:, order], masked


@pytest.mark.parametrize("kind", ["forest", "tree"])
def test_probabilities_and_confidence_float32_are_predict_proba(tmp_path: Path, kind: str) -> None:
    """forest: codes and probabilities from one predict_proba; tree: predict + predict_proba."""
    case = build_case(tmp_path, kind=kind, labels=("b", "a", "c"), height=70, width=53)
    assert predicts_by_argmax(case.model) == (kind == "forest")
    proba_path, conf_path = tmp_path / "out" / "proba.tif", tmp_path / "out" / "conf.tif"
    cfg = _with_outputs(
        case,
        probabilities=str(proba_path),
        confidence=str(conf_path),
        probabilities_dtype="float32",
    )
    report = run(cfg, workers=1)
    ref = reference_from_config(case.config)
    assert_codes_equal(_read(case.output)[0], ref.codes)

    expected, masked = _expected_proba(case, report)
    bands, conf = _read(proba_path), _read(conf_path)[0]
    assert bands.dtype == np.float32 and bands.shape == (3, 70, 53)
    got = bands.reshape(3, -1)
    assert np.isnan(got[:, masked]).all() and np.isnan(conf.ravel()[masked]).all()
    np.testing.assert_array_equal(got[:, ~masked], expected.T.astype(np.float32))
    np.testing.assert_array_equal(conf.ravel()[~masked], got[:, ~masked].max(axis=0))
    with rasterio.open(proba_path) as ds:
        assert ds.descriptions == tuple(report["legend"].values())
        assert ds.tags(2)["code"] == "1"
    assert report["outputs"]["probabilities"] == str(proba_path)


@pytest.mark.parametrize("workers,engine", [(1, "threads"), (2, "threads"), (2, "processes")])
def test_uint8_bands_agree_with_codes(tmp_path: Path, workers: int, engine: str) -> None:
    case = build_case(tmp_path, kind="forest", labels=("x", "y", "z", "w"), height=61, width=77)
    proba_path, conf_path = tmp_path / "out" / "p.tif", tmp_path / "out" / "c.tif"
    cfg = _with_outputs(case, probabilities=str(proba_path), confidence=str(conf_path))
    cfg["processing"] = {"engine": engine, "memory_mb": 1}  # many small windows
    report = run(cfg, workers=workers)
    codes = _read(case.output)[0]
    assert_codes_equal(codes, reference_from_config(case.config).codes)
    bands, conf = _read(proba_path), _read(conf_path)[0]
    assert bands.dtype == np.uint8 and conf.dtype == np.uint8
    masked = codes == 255
    assert masked.any() and (bands[:, masked] == 255).all() and (conf[masked] == 255).all()
    kept = bands[:, ~masked]
    assert kept.max() <= 100
    # the class of each pixel has the highest (possibly tied) probability band
    at_code = np.take_along_axis(kept, codes[~masked][None, :].astype(np.int64), axis=0)[0]
    assert (at_code == kept.max(axis=0)).all()
    assert (conf[~masked] == kept.max(axis=0)).all()
    # whole percents, rounded: each pixel's bands add up to 100 within the rounding
    assert np.abs(kept.sum(axis=0).astype(int) - 100).max() <= len(report["legend"]) // 2 + 1
    expected, _ = _expected_proba(case, report)
    np.testing.assert_array_equal(kept, np.rint(expected.T * 100).astype(np.uint8))


def test_model_without_predict_proba_fails_before_any_work(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    frame = pd.DataFrame(
        np.random.default_rng(0).normal(size=(30, 3)), columns=case.model.feature_names_in_
    )
    joblib.dump(RidgeClassifier().fit(frame, ["a", "b", "c"] * 10), case.model_path)
    cfg = _with_outputs(case, confidence=str(tmp_path / "out" / "conf.tif"))
    result = run_main(case.write_config(config=cfg))
    assert result.returncode == 2, result.stderr
    assert "predict_proba" in result.stderr and "output.confidence" in result.stderr
    assert "Traceback" not in result.stderr
    assert not any((tmp_path / "out").iterdir())


def test_cog_outputs_validate_and_hold_identical_values(tmp_path: Path) -> None:
    case = build_case(tmp_path, kind="forest", height=600, width=530, layout=("tiled", 256))
    plain = _with_outputs(
        case,
        path=str(tmp_path / "plain" / "c.tif"),
        probabilities=str(tmp_path / "plain" / "p.tif"),
    )
    run(plain, workers=1)
    cog = _with_outputs(case, probabilities=str(tmp_path / "out" / "p.tif"), cog=True)
    report = run(cog, workers=2)
    assert report["cog"] is True
    for name, kind in (("c.tif", "classes"), ("p.tif", "probabilities")):
        path = case.output if kind == "classes" else tmp_path / "out" / name
        with rasterio.open(path) as ds:
            assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            assert ds.overviews(1) == [2, 4]  # 600 px -> 300 -> 150, which fits one tile
            assert ds.block_shapes[0] == (256, 256)
            values = ds.read()
        np.testing.assert_array_equal(values, _read(tmp_path / "plain" / name))
    with rasterio.open(case.output) as ds:
        assert ds.colormap(1)[0][3] == 255 and ds.colormap(1)[255] == (0, 0, 0, 0)
        overview = ds.read(1, out_shape=(150, 133))  # served from the mode overview
    assert set(np.unique(overview)) <= set(range(3)) | {255}
    leftovers = [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_style_sidecars_name_every_class(tmp_path: Path) -> None:
    labels = ("Vertosol", "Sodosol & <clay>", "Ferrosol")
    case = build_case(tmp_path, labels=labels)
    report = run(case.config, workers=1)
    outputs = report["outputs"]
    codes = _read(case.output)[0]

    qml = ET.parse(outputs["qml"]).getroot()
    renderer = qml.find("pipe/rasterrenderer")
    assert renderer is not None and renderer.get("type") == "paletted"
    entries = renderer.findall("colorPalette/paletteEntry")
    legend = report["legend"]
    assert [(e.get("value"), e.get("label")) for e in entries] == list(legend.items())
    assert len({e.get("color") for e in entries}) == len(labels)

    with open(outputs["legend_csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["label"] for r in rows] == list(legend.values())
    for r in rows:
        assert int(r["pixel_count"]) == int(np.count_nonzero(codes == int(r["code"])))
        assert int(r["pixel_count"]) == report["pixel_counts"][r["code"]]

    band = ET.parse(outputs["aux_xml"]).getroot().find("PAMRasterBand")
    assert band is not None
    assert [c.text for c in band.findall("CategoryNames/Category")] == list(legend.values())
    rat_rows = band.findall("GDALRasterAttributeTable/Row")
    assert [[f.text for f in row][:3] for row in rat_rows] == [
        [r["code"], r["pixel_count"], r["label"]] for r in rows
    ]
    with rasterio.open(case.output) as ds:
        table = ds.colormap(1)
    for r in rows:
        colour = r["colour"].lstrip("#")
        rgb = tuple(int(colour[i : i + 2], 16) for i in (0, 2, 4))
        assert table[int(r["code"])] == (*rgb, 255)


@pytest.mark.skipif(shutil.which("gdalinfo") is None, reason="GDAL's command-line tools")
def test_gdal_reads_the_category_names(tmp_path: Path) -> None:
    case = build_case(tmp_path, labels=("water", "forest", "urban"))
    legend = run(case.config, workers=1)["legend"]
    text = subprocess.run(
        ["gdalinfo", str(case.output)], capture_output=True, text=True, check=True
    ).stdout
    assert "Categories:" in text
    assert sorted(legend.values()) == ["forest", "urban", "water"]
    for code, label in legend.items():
        assert f"{code}: {label}" in text


def test_palette_is_distinct_for_many_classes() -> None:
    colours = palette(100)
    assert len(set(colours)) == 100
    assert all(0 <= c <= 255 for rgb in colours for c in rgb)


def test_outputs_in_the_rasters_folder_are_not_read_as_layers(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    cfg = _with_outputs(
        case,
        probabilities=str(case.folder / "proba.tif"),
        confidence=str(case.folder / "conf.tif"),
        overwrite=True,
    )
    run(cfg, workers=1)
    report = run(cfg, workers=1)  # second run: the first run's rasters are in the folder
    assert report["ignored_layers"] == []
    assert_codes_equal(_read(case.output)[0], reference_from_config(case.config).codes)


def test_output_paths_must_differ(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    cfg = _with_outputs(case, confidence=str(case.output))
    result = run_main(case.write_config(config=cfg))
    assert result.returncode == 2
    assert "output.confidence" in result.stderr and "output.path" in result.stderr


def test_existing_probability_output_is_refused_without_overwrite(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    proba = tmp_path / "out" / "p.tif"
    proba.write_bytes(b"keep me")
    result = run_main(case.write_config(config=_with_outputs(case, probabilities=str(proba))))
    assert result.returncode == 2 and str(proba) in result.stderr
    assert proba.read_bytes() == b"keep me" and not case.output.exists()


def test_preview_is_written_by_the_run(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the preview extra")
    case = build_case(tmp_path, height=300, width=200)
    png = tmp_path / "out" / "look.png"
    report = run(_with_outputs(case, preview=str(png), cog=True), workers=1)
    assert report["outputs"]["preview"] == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_preview_without_matplotlib_fails_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from windowed_classify.errors import UserError

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    case = build_case(tmp_path)
    with pytest.raises(UserError, match=r"output\.preview.*windowed_classify\[preview\]"):
        run(_with_outputs(case, preview=str(tmp_path / "out" / "p.png")), workers=1)
    assert list((tmp_path / "out").iterdir()) == []
