"""Edges a GIS user meets: the tool's outputs in the covariate folder, a model that fails,
names of per-date files, a zero collar, a threshold nobody reaches, mostly masked outputs."""

from __future__ import annotations

import copy
from pathlib import Path

import joblib
import numpy as np
import pytest
from helpers import (
    DEFAULT_TRANSFORM,
    Case,
    build_case,
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

import windowed_classify
from windowed_classify.config import load_config
from windowed_classify.errors import InputError


def test_output_inside_the_covariate_folder_is_never_a_layer(case: Case) -> None:
    config = copy.deepcopy(case.config)
    config["output"]["path"] = str(case.folder / "prediction.tif")
    config["output"]["overwrite"] = True
    first = windowed_classify.run(config)
    assert first["ignored_layers"] == []
    codes_first, _ = read_output(case.folder / "prediction.tif")
    # The second run sees prediction.tif in the folder: not a layer, no warning, same result.
    second = windowed_classify.run(config)
    assert second["ignored_layers"] == []
    codes_second, _ = read_output(case.folder / "prediction.tif")
    assert np.array_equal(codes_first, codes_second)


class _Broken:
    """Pickles fine, then fails at predict, like a model trained on other columns."""

    def __init__(self, features: list[str]):
        self.feature_names_in_ = np.array(features, dtype=object)
        self.classes_ = np.array(["a", "b"], dtype=object)

    def predict(self, frame):  # noqa: ANN001 - sklearn-style signature
        raise ValueError("X has 3 features, but this model was fitted with 5")


def test_a_model_that_fails_to_predict_is_one_clear_error(case: Case, tmp_path: Path) -> None:
    model_path = tmp_path / "broken.pkl"
    joblib.dump(_Broken([layer.name for layer in case.stack.layers]), model_path)
    config = copy.deepcopy(case.config)
    config["model"]["path"] = str(model_path)
    config["processing"] = {"workers": 1}
    result = run_main(case.write_config("broken.yaml", config), cwd=Path(__file__).parent)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "failed to predict" in result.stderr and "broken.pkl" in result.stderr
    assert "fitted with 5" in result.stderr
    assert not case.output.exists()
    assert not list(case.output.parent.glob("*.tif"))


# ----------------------------------------------------------------------------- names, folders


def _dates(folder: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Two dates of a two-band scene, both files describing their bands red and nir (as Earth
    Engine and most exporters write them); the same values as single-band files for the
    reference."""
    bands = {}
    for date in ("d1", "d2"):
        red, nir = (rng.normal(100, 20, (37, 45)).astype(np.float32) for _ in range(2))
        write_multiband(folder / f"{date}.tif", [red, nir], descriptions=["red", "nir"])
        bands[f"{date}_red"], bands[f"{date}_nir"] = red, nir
    return bands


def test_files_of_several_dates_are_named_by_their_stem(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    bands = _dates(tmp_path / "c", rng)
    names = list(bands)
    model = train_model(names, {n: b.ravel() for n, b in bands.items()}, ("a", "b", "c"))
    model_path = save_model(model, tmp_path / "m.pkl")
    cfg = make_config(tmp_path / "c", model_path, tmp_path / "o.tif", nodata={"values": []})
    with pytest.raises(InputError, match="rasters.band_names: stem"):  # red twice, used
        windowed_classify.run(cfg)

    cfg["rasters"]["band_names"] = "stem"
    report = windowed_classify.run(cfg)
    assert report["features"] == names
    for name, data in bands.items():  # the same values as the single-band files would give
        write_raster(tmp_path / "single" / f"{name}.tif", data)
    single = make_config(tmp_path / "single", model_path, tmp_path / "s.tif", nodata={"values": []})
    windowed_classify.run(single)
    assert np.array_equal(read_output(tmp_path / "o.tif")[0], read_output(tmp_path / "s.tif")[0])


def test_a_name_shared_by_layers_the_model_does_not_use_only_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(4)
    _dates(tmp_path / "c", rng)  # red and nir twice: the model uses neither
    write_raster(tmp_path / "c" / "elev.tif", rng.normal(0, 1, (37, 45)).astype(np.float32))
    model = train_model(["elev"], {"elev": np.arange(9.0)}, ("a", "b"))
    cfg = make_config(tmp_path / "c", save_model(model, tmp_path / "m.pkl"), tmp_path / "o.tif")
    with caplog.at_level("WARNING", logger="windowed_classify"):
        report = windowed_classify.run(cfg)
    assert report["features"] == ["elev"]
    assert "two layers have the feature name 'red'" in caplog.text
    assert "the model uses neither: they are ignored" in caplog.text


def test_the_tools_own_outputs_are_never_layers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    case = build_case(tmp_path, kind="forest")
    for run in ("first", "second"):  # two runs' probabilities: bands described by class label
        cfg = copy.deepcopy(case.config)
        cfg["output"].update(
            path=str(case.folder / f"{run}.tif"),
            probabilities=str(case.folder / f"{run}_proba.tif"),
        )
        with caplog.at_level("WARNING", logger="windowed_classify"):
            report = windowed_classify.run(cfg)
        assert report["features"] == ["elev", "slope", "ndvi"] and report["ignored_layers"] == []
    assert "not layers: 2 raster(s) this tool wrote" in caplog.text  # the first run's two
    assert "first_proba.tif" in caplog.text
    codes = [read_output(case.folder / f"{run}.tif")[0] for run in ("first", "second")]
    assert np.array_equal(*codes)


def test_a_folder_that_is_a_file_points_at_rasters_files(case: Case) -> None:
    case.config["rasters"]["folder"] = str(case.folder / "elev.tif")
    proc = run_main(case.write_config())
    assert proc.returncode == 2 and "use rasters.files" in proc.stderr


def test_paths_are_shown_normalised(case: Case) -> None:
    case.config["rasters"]["folder"] = str(case.folder.parent / "x" / ".." / "covariates")
    assert load_config(case.config).rasters.folder == case.folder


def test_the_off_grid_error_has_a_line_per_file_and_a_cap(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    folder = tmp_path / "c"
    names = [f"layer{i:02d}" for i in range(16)]
    for i, name in enumerate(names):  # 4 files on the grid, 12 off it (each its own grid)
        t = DEFAULT_TRANSFORM if i < 4 else from_origin(100 * i, 0, 10, 10)
        if i == 15:  # one file of three bands, all off
            bands = [rng.normal(0, 1, (37, 45)).astype(np.float32) for _ in range(3)]
            write_multiband(folder / f"{name}.tif", bands, transform=t)
            continue
        data = rng.normal(0, 1, (37, 45)).astype(np.float32)
        write_raster(folder / f"{name}.tif", data, transform=t)
    features = names[:15] + [f"{names[15]}_{b}" for b in (1, 2, 3)]
    model = train_model(features, {f: np.arange(9.0) for f in features}, ("a", "b"))
    cfg = make_config(folder, save_model(model, tmp_path / "m.pkl"), tmp_path / "o.tif")
    proc = run_main(write_yaml(tmp_path / "c.yaml", cfg))
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("error: 12 files (14 bands) are not on the grid")
    assert len([ln for ln in lines if ln.startswith("  ")]) == 11  # 10 files, then the rest
    assert lines[-1] == "  and 2 more file(s)"
    assert max(len(ln) for ln in lines) <= 400


# ----------------------------------------------------------------------------- nodata


def test_a_threshold_no_pixel_can_reach_is_a_warning(case: Case) -> None:
    case.config["nodata"]["threshold"] = 3
    proc = run_main("check", case.write_config())
    assert proc.returncode == 0
    assert "nodata.threshold 3 is not below the 3 model layer(s): no pixel will be masked" in (
        proc.stdout
    )


def _collar_scene(folder: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A uint16 Landsat-like scene whose collar is 0, with no nodata tag."""
    bands = {}
    for name in ("b3", "b4", "b5"):
        data = rng.integers(6000, 20000, (60, 80)).astype(np.uint16)
        data[:, :9] = 0  # the collar: 15% of the scene
        data[:3, :] = 0
        write_raster(folder / f"{name}.tif", data, dtype="uint16")
        bands[name] = data
    return bands


def test_a_zero_collar_is_named_in_check(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    bands = _collar_scene(tmp_path / "c", rng)
    model = train_model(list(bands), {n: b.ravel() for n, b in bands.items()}, ("tree", "grass"))
    cfg = make_config(tmp_path / "c", save_model(model, tmp_path / "m.pkl"), tmp_path / "o.tif")
    config = write_yaml(tmp_path / "c.yaml", cfg)
    proc = run_main("check", config)
    assert proc.returncode == 0
    share = 100 * np.mean(bands["b3"] == 0)
    for name in bands:
        expected = f"WARNING: layer '{name}': value 0 covers {share:.3g}% of the sampled pixels"
        assert expected in proc.stdout
    assert "at the edge of its range" in proc.stdout and "add it to nodata.values" in proc.stdout

    cfg["nodata"] = {"values": [0]}
    quiet = run_main("check", write_yaml(tmp_path / "c0.yaml", cfg))
    assert "value 0 covers" not in quiet.stdout


@pytest.mark.parametrize("threshold", [0, 1])
def test_a_run_names_the_zero_collar_as_check_does(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, threshold: int
) -> None:
    """The run's hints come from its guide windows (counted in pass 2) and, on a warm run,
    from the statistics cache: the same line as ``check``'s, both times."""
    rng = np.random.default_rng(6)
    bands = _collar_scene(tmp_path / "c", rng)
    model = train_model(list(bands), {n: b.ravel() for n, b in bands.items()}, ("tree", "grass"))
    cfg = make_config(tmp_path / "c", save_model(model, tmp_path / "m.pkl"), tmp_path / "o.tif")
    cfg["nodata"] = {"threshold": threshold}
    cfg["output"]["overwrite"] = True
    cfg["processing"] = {"cache_dir": str(tmp_path / "cache")}
    checked = run_main("check", write_yaml(tmp_path / "c.yaml", cfg)).stdout
    expected = [line.removeprefix("WARNING: ") for line in checked.splitlines() if "covers" in line]
    assert len(expected) == len(bands)
    for source in ("computed", "used"):
        caplog.clear()
        with caplog.at_level("WARNING", logger="windowed_classify"):
            report = windowed_classify.run(cfg)
        assert report["stats_cache"] == source
        for line in expected:
            assert line in caplog.text, (source, line)


def test_a_mostly_masked_output_says_why(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    case = build_case(tmp_path)
    holes = case.stack.layers[1].data.copy()
    holes[:, 3:] = -9999.0  # nodata (the file's tag) on 93% of the grid
    write_raster(case.folder / "slope.tif", holes, nodata=-9999.0)
    with caplog.at_level("WARNING", logger="windowed_classify"):
        windowed_classify.run(case.config)
    assert "of the output is masked; likeliest cause: layer 'slope' is nodata on 9" in caplog.text


def test_align_without_a_reference_says_which_grid(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    case = build_case(tmp_path)
    fine = from_origin(500000.0, 6000000.0, 40.0, 40.0)
    write_raster(case.folder / "slope.tif", np.ones((74, 90), np.float32), transform=fine)
    case.config["rasters"]["align"] = True
    with caplog.at_level("WARNING", logger="windowed_classify"):
        windowed_classify.run(case.config)
    assert "rasters.align: the reference grid is the grid 2 of 3 model layers share" in caplog.text
    assert "set rasters.reference" in caplog.text
