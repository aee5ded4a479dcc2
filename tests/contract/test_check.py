"""`check`: everything knowable before a run, every reason it would not start, and no model
run nor full read of the stack."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers import Case, build_case, run_main, save_model, train_model, write_raster
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from reference import nodata_mask

from windowed_classify.commands.check import check
from windowed_classify.inputs.reader import StackReader


def table_rows(text: str, title: str) -> list[list[str]]:
    """The rows of the table printed under the line starting with ``title``."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(title))
    rows = []
    for line in lines[start + 3 :]:  # title, header, dashes
        if not line.startswith("  ") or line.startswith("  ("):
            break
        rows.append(line.split())
    return rows


def test_check_names_every_feature_and_passes(tmp_path: Path) -> None:
    case = build_case(tmp_path, names=("elev", "slope", "ndvi", "spare"))
    model = train_model(
        ["ndvi", "elev", "slope"],
        {s.name: s.data.ravel() for s in case.stack.layers},
        ["forest", "water", "urban"],
    )
    save_model(model, case.model_path)
    proc = run_main("check", case.write_config())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    features = table_rows(out, "model features:")
    assert [r[1] for r in features] == ["ndvi", "elev", "slope", "spare"]
    assert [r[-1] for r in features] == ["ok", "ok", "ok", "extra"]
    classes = table_rows(out, "classes:")
    assert classes[:3] == [["0", "'forest'"], ["1", "'urban'"], ["2", "'water'"]]
    assert classes[3][0] == "255"
    layers = table_rows(out, "layers:")
    assert [r[1] for r in layers] == ["elev", "ndvi", "slope", "spare"]  # files' order
    assert all(r[6] == "-9999" for r in layers)  # each file's nodata tag (after "band")
    assert "WARNING: ignoring 1 layer(s) the model does not use: spare" in out
    assert out.rstrip().endswith("OK: the run would start.")
    assert not case.output.exists()


def test_check_fails_on_a_missing_feature_and_lists_every_problem(tmp_path: Path) -> None:
    case = build_case(tmp_path, names=("elev", "slope", "ndvi"))
    (case.folder / "ndvi.tif").unlink()
    write_raster(  # a layer off the grid
        case.folder / "slope.tif",
        np.zeros((37, 45), np.float32),
        transform=from_origin(0, 0, 10, 10),
    )
    case.output.write_bytes(b"an earlier run")
    proc = run_main("check", case.write_config())
    assert proc.returncode == 2, proc.stdout + proc.stderr
    out = proc.stdout
    status = {r[1]: r[-1] for r in table_rows(out, "model features:")}
    assert status["ndvi"] == "MISSING" and status["elev"] == "ok"
    problems = out.split("NOT READY: ", 1)[1]
    assert problems.startswith("3 problem(s)")
    assert "have no raster" in problems and "ndvi" in problems
    assert "1 file is not on the grid" in problems and "slope.tif: transform" in problems
    assert "already exists" in problems
    assert case.output.read_bytes() == b"an earlier run"


def test_check_does_not_run_the_model(tmp_path: Path, monkeypatch) -> None:
    case = build_case(tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("check ran the model")

    monkeypatch.setattr(type(case.model), "predict", refuse)
    monkeypatch.setattr(type(case.model), "predict_proba", refuse)
    assert check(case.write_config()).ok


def test_config_errors_exit_2(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    case.config["output"]["colour"] = "red"
    proc = run_main("check", case.write_config())
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: unknown config key 'output.colour'")


def test_value_ranges_and_undeclared_nodata(tmp_path: Path) -> None:
    case = build_case(tmp_path, names=("elev", "slope", "ndvi"))
    elev = case.stack.layers[0].data.copy()
    elev[0, :5] = -9999.0  # the file tag below declares it
    elev[1, :3] = -3.4e38  # the config's nodata value
    write_raster(case.folder / "elev.tif", elev, nodata=-9999.0)
    slope = np.full((37, 45), 12.5, np.float32)
    slope[2, 2], slope[3, 3] = -32768.0, 7.0  # -32768 undeclared
    write_raster(case.folder / "slope.tif", slope)
    ndvi = np.full((37, 45), 0.5, np.float32)
    ndvi[4, 4] = 1e36  # a huge undeclared fill
    write_raster(case.folder / "ndvi.tif", ndvi)

    result = check(case.write_config())
    assert result.ok
    info = {la.name: la for la in result.layers}
    valid = elev[~nodata_mask(elev, -9999.0, case.config["nodata"]["values"])]
    assert (info["elev"].min, info["elev"].max) == (float(valid.min()), float(valid.max()))
    assert info["elev"].range_source == "all pixels" and not info["elev"].warnings
    assert (info["slope"].min, info["slope"].max) == (-32768.0, 12.5)
    assert any("value -32768, a usual nodata value" in w for w in info["slope"].warnings)
    assert any("1e+36" in w for w in info["ndvi"].warnings)
    text = result.render()
    assert "WARNING: layer 'slope': value -32768, a usual nodata value" in text
    assert "WARNING: layer 'ndvi': value 1e+36 looks like a float nodata fill" in text

    # declared, the same values raise no warning
    case.config["nodata"]["values"] = [-32768, 1e36, -3.4e38]
    quiet = check(case.write_config())
    assert not any(la.warnings for la in quiet.layers)
    assert {la.name: la.min for la in quiet.layers}["slope"] == 7.0


def test_ranges_come_from_a_sample_of_blocks_not_the_whole_stack(tmp_path, monkeypatch) -> None:
    case = build_case(tmp_path, height=256, width=320, layout=("tiled", 16))
    pixels = []
    real_read = StackReader.read

    def spy(self, window):
        pixels.append(int(window.width * window.height) * len(self.layers))
        return real_read(self, window)

    monkeypatch.setattr(StackReader, "read", spy)
    budget = 4096
    result = check(case.write_config(), sample_pixels=budget)
    assert len(pixels) >= 3 * 4  # several blocks per layer, spread out
    per_layer = sum(pixels) / 3
    assert per_layer <= budget + 16 * 320  # within the budget, give or take one read
    assert per_layer < 256 * 320 / 10
    for la in result.layers:
        assert la.range_source.startswith("sample ")
        spec = next(s for s in case.stack.layers if s.name == la.name)
        values = spec.data.astype(np.float32)
        valid = values[~nodata_mask(values, spec.file_nodata, case.config["nodata"]["values"])]
        assert valid.min() <= la.min <= la.max <= valid.max()  # a sample of the real values


def test_ranges_come_from_overviews_when_the_file_has_them(tmp_path: Path) -> None:
    case = build_case(tmp_path, height=128, width=128, layout=("tiled", 16))
    with rasterio.open(case.folder / "elev.tif", "r+") as ds:
        ds.build_overviews([2, 4], Resampling.nearest)
    result = check(case.write_config(), sample_pixels=40 * 40)
    info = {la.name: la for la in result.layers}
    assert info["elev"].range_source == "overview 1/4"
    assert info["elev"].sampled_pixels == 32 * 32
    assert info["slope"].range_source.startswith("sample ")


def test_ranges_from_the_statistics_cache_after_a_run(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    config = case.write_config()
    report = __import__("windowed_classify").run(config)
    case.output.unlink()
    for path in case.output.parent.iterdir():  # sidecars a run writes beside its output
        path.unlink()
    result = check(config)
    assert result.ok, result.problems
    for la in result.layers:
        assert la.range_source == "exact (statistics cache)"
        assert (la.min, la.max) == (
            report["layers"][la.name]["min"],
            report["layers"][la.name]["max"],
        )


def test_estimates(tmp_path: Path) -> None:
    case = build_case(tmp_path, height=600, width=500, layout=("tiled", 16))
    case.config["processing"] = {"memory_mb": 64, "workers": 2}
    case.config["output"]["dtype"] = "uint16"
    result = check(case.write_config())
    est = result.estimate
    assert est is not None and est.workers == 2 and est.memory_mb == 64
    assert est.windows >= 1 and est.window_shape[0] * est.window_shape[1] <= 600 * 500
    assert est.outputs_mb[str(case.output)] == pytest.approx(600 * 500 * 2 / 2**20)
    assert est.peak_mb >= 64
    assert "peak memory" in result.render()


def spill_sizes(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Bytes of every spill file a run wrote (keys, rows), measured as the run removes them."""
    from windowed_classify.passes.executor import Executor

    sizes = {".keys": 0, ".rows": 0}
    forget = Executor.forget

    def measured(self: Executor, token: str, folder: Path | None) -> None:
        if folder is not None:
            for path in (folder / token).rglob("*"):
                if path.suffix in sizes:
                    sizes[path.suffix] += path.stat().st_size
        forget(self, token, folder)

    monkeypatch.setattr(Executor, "forget", measured)
    return sizes


@pytest.mark.parametrize("threshold", [0, 1])
def test_check_says_how_much_the_run_writes_beside_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threshold: int
) -> None:
    """The statistics spill (keys near each median, every key of the guide's windows) and,
    above threshold 0, the rows waiting for a median fill: what check says, the run writes."""
    case = build_case(
        tmp_path, names=("elev", "slope", "ndvi", "twi"), height=600, width=520, seed=4
    )
    case.config["nodata"]["threshold"] = threshold
    case.config["processing"] = {"stats_cache": False, "memory_mb": 4, "workers": 2}
    result = check(case.write_config())
    spill = result.estimate.spill
    doc = result.document()["estimate"]["spill"]
    written = spill_sizes(monkeypatch)
    report = __import__("windowed_classify").run(case.config)
    assert report["pass1"] == spill.pass1 == doc["pass1"]
    assert doc["reads"] == 1 and doc["counted_layers"] == 4
    assert spill.where == doc["where"] == "beside the output"
    keys, rows = written[".keys"] / 2**20, written[".rows"] / 2**20
    assert keys > 0 and spill.statistics_mb == pytest.approx(keys, rel=0.15)
    assert doc["statistics_mb"] == pytest.approx(spill.statistics_mb, abs=1e-3)
    if threshold == 0:
        assert rows == spill.rows_mb == 0
    else:
        assert rows > 0 and spill.rows_mb == pytest.approx(rows, rel=0.05)
        assert spill.fill_source == doc["fill_source"] == "sample"
    assert doc["total_mb"] == pytest.approx(keys + rows, rel=0.15)
    assert f"spill        about {spill.total_mb:,.1f} MB written beside the output" in (
        result.render()
    )


def test_check_warns_when_the_outputs_disk_lacks_room_for_the_spill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import windowed_classify.commands.check as check_module

    case = build_case(tmp_path, height=600, width=520, seed=4)
    case.config["nodata"]["threshold"] = 1
    case.config["processing"] = {"stats_cache": False, "memory_mb": 4}
    roomy = check(case.write_config())
    spill = roomy.estimate.spill
    outputs = sum(roomy.estimate.outputs_mb.values())
    assert not any("beside the output" in w for w in roomy.warnings)
    free = outputs + spill.total_mb / 2  # room for the outputs, not for the spill as well
    monkeypatch.setattr(check_module, "_free_mb", lambda folder: free)
    tight = check(case.write_config())
    warning = next(w for w in tight.warnings if "beside the output" in w)
    assert warning.startswith(f"the run writes about {spill.total_mb:,.0f} MB beside the output")
    assert warning.endswith(f"and only {free:,.0f} MB are free there")
    assert f"WARNING: {warning}" in tight.render()
    assert warning in tight.document()["warnings"]
    assert tight.ok  # a warning: the run may still find the room


def test_a_misfit_layer_is_a_problem_unless_aligned(tmp_path: Path) -> None:
    case = build_case(tmp_path)
    fine = from_origin(500000.0, 6000000.0, 40.0, 40.0)  # half the pixel size
    write_raster(case.folder / "slope.tif", np.ones((74, 90), np.float32), transform=fine)
    strict = check(case.write_config())
    assert not strict.ok and "1 file is not on the grid" in strict.problems[0]
    assert "slope.tif: transform resolution 40 x 40" in strict.problems[0]
    assert {la.name: la.status for la in strict.layers}["slope"] == "not on the grid"

    case.config["rasters"]["align"] = True
    aligned = check(case.write_config())
    assert aligned.ok, aligned.problems
    slope = {la.name: la for la in aligned.layers}["slope"]
    assert slope.warped == "nearest" and (slope.min, slope.max) == (1.0, 1.0)
    assert "ok, warped (nearest)" in aligned.render()


def test_check_overwrite_checks_as_a_run_with_overwrite(case: Case) -> None:
    case.output.write_bytes(b"an earlier run")
    config = case.write_config()
    assert run_main("check", config).returncode == 2  # the run would refuse it...
    proc = run_main("check", config, "--overwrite")  # ...not with --overwrite
    assert proc.returncode == 0, proc.stdout
    assert run_main(config, "--overwrite", "--quiet").returncode == 0
