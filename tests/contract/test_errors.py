"""Every kind of user error through the CLI: exit 2, one clear message, no traceback,
nothing left under the output's name."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from checks import assert_run_matches
from helpers import (
    Case,
    PausingModel,
    build_case,
    load_report,
    package_root,
    run_cli,
    run_main,
    save_model,
    signal_state,
    threshold_model,
    train_model,
    write_raster,
    write_yaml,
)
from rasterio.transform import from_origin
from reference import reference_from_config


def assert_user_error(
    proc: subprocess.CompletedProcess[str],
    *needles: str,
    output: Path | None = None,
    out_dir_empty: bool = False,
) -> str:
    """Exit 2, no traceback, one `error:` (with the indented lines that go on with it, one a
    file for a grid error) naming every needle; no output file."""
    err = proc.stderr
    assert proc.returncode == 2, f"exit {proc.returncode}; stderr: {err!r}"
    assert "Traceback" not in err, err
    lines = err.splitlines()
    starts = [i for i, ln in enumerate(lines) if ln.startswith("error:")]
    assert len(starts) == 1, f"expected one 'error:' line, got: {err!r}"
    rest = lines[starts[0] + 1 :]
    going_on = next((i for i, ln in enumerate(rest) if not ln.startswith("  ")), len(rest))
    message = "\n".join(lines[starts[0] : starts[0] + 1 + going_on])
    for needle in needles:
        assert needle in message, f"{needle!r} not named in {message!r}"
    if output is not None:
        assert not output.exists(), f"{output} exists after a failed run"
        leftovers = sorted(p.name for p in output.parent.iterdir())
        if out_dir_empty:
            assert leftovers == [], f"files left beside the output: {leftovers}"
        else:  # a statistics cache may stay; no partial raster, no report
            litter = [n for n in leftovers if output.name in n and not n.endswith(".stats.json")]
            litter += [n for n in leftovers if n.endswith((".tif", ".tiff", ".report.json"))]
            assert not litter, f"a failed run left {litter} beside the output"
    return message


def cli(
    case: Case, config: dict[str, Any] | None = None, *args: str
) -> subprocess.CompletedProcess:
    cfg = case.write_config("config.yaml", config)
    return run_main(cfg, *args, cwd=case.root)


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("section", "key"), [("rasters", "folder"), ("model", "path"), ("output", "path")]
)
def test_missing_required_key(case: Case, section: str, key: str) -> None:
    del case.config[section][key]
    assert_user_error(cli(case), section, key, output=case.output, out_dir_empty=True)


def test_missing_required_section(case: Case) -> None:
    del case.config["model"]
    assert_user_error(cli(case), "model", output=case.output, out_dir_empty=True)


@pytest.mark.parametrize(
    ("path", "bad", "allowed"),
    [
        ((), "outptu", ["rasters", "nodata", "model", "output"]),
        (("rasters",), "recursive", ["folder", "extensions"]),
        (("nodata",), "treshold", ["values", "use_file_nodata", "threshold"]),
        (("model",), "labels", ["path", "scoring_file", "features", "classes"]),
        (("output",), "format", ["path", "dtype", "nodata", "compress", "overwrite"]),
    ],
)
def test_unknown_key_named_with_allowed_keys(
    case: Case, path: tuple[str, ...], bad: str, allowed: list[str]
) -> None:
    section = case.config
    for part in path:
        section = section.setdefault(part, {})
    section[bad] = 1
    assert_user_error(cli(case), bad, *allowed, output=case.output, out_dir_empty=True)


def test_bad_value_type_names_key(case: Case) -> None:
    case.config["nodata"]["threshold"] = "lots"
    assert_user_error(cli(case), "threshold", output=case.output, out_dir_empty=True)


def test_config_file_missing(tmp_path: Path) -> None:
    proc = run_cli(tmp_path / "nope.yaml", cwd=tmp_path)
    assert_user_error(proc, "nope.yaml")


def test_config_not_yaml_mapping(tmp_path: Path) -> None:
    cfg = tmp_path / "broken.yaml"
    cfg.write_text("rasters: [unclosed\n  - : :\n")
    assert_user_error(run_main(cfg, cwd=tmp_path), "broken.yaml")


# --------------------------------------------------------------------------- inputs


def test_raster_folder_missing(case: Case) -> None:
    case.config["rasters"]["folder"] = str(case.root / "no_such_folder")
    assert_user_error(cli(case), "no_such_folder", output=case.output, out_dir_empty=True)


def test_unreadable_raster_named(case: Case) -> None:
    """A layer the model uses that cannot be opened (an unused one does not matter: see
    test_inputs.py)."""
    (case.folder / "slope.tif").write_bytes(b"II*\x00 definitely not a GeoTIFF")
    assert_user_error(cli(case), "slope.tif", output=case.output, out_dir_empty=True)


def test_duplicate_feature_names_both_files(case: Case) -> None:
    data = case.stack.layers[0].data
    write_raster(case.folder / "a" / "dup.tif", data, nodata=-9999.0)
    write_raster(case.folder / "b" / "dup.TIFF", data, nodata=-9999.0)
    features = ["elev", "slope", "ndvi", "dup"]  # the model uses the name: it matters
    save_model(
        train_model(features, {f: data.ravel() for f in features}, ["a", "b"]), case.model_path
    )
    assert_user_error(
        cli(case),
        os.path.join("a", "dup.tif"),
        os.path.join("b", "dup.TIFF"),
        output=case.output,
        out_dir_empty=True,
    )


@pytest.mark.parametrize(
    ("what", "words"),
    [
        ("crs", ["crs"]),
        ("transform", ["transform"]),
        ("size", ["width", "height", "size", "shape"]),
    ],
)
def test_grid_mismatch(case: Case, what: str, words: list[str]) -> None:
    spec = case.stack.layers[1]  # slope: sorted after elev, which comes first
    data = spec.data
    kwargs: dict[str, Any] = {"nodata": -9999.0}
    if what == "crs":
        kwargs["crs"] = "EPSG:32634"
    elif what == "transform":
        kwargs["transform"] = from_origin(500080.0, 6000000.0, 80.0, 80.0)
    else:
        data = data[:-1, :]
    write_raster(case.folder / "slope.tif", data, **kwargs)
    msg = assert_user_error(cli(case), "slope", output=case.output, out_dir_empty=True)
    assert any(w in msg.lower() for w in words), f"{msg!r} does not say what differs ({what})"


def test_missing_features_listed_together(tmp_path: Path) -> None:
    case = build_case(tmp_path, names=("elev", "slope"))
    feats = ["elev", "clay_pct", "slope", "twi_index"]
    pools = {n: np.array([1.0, 2.0, 3.0], np.float32) for n in feats}
    save_model(train_model(feats, pools, ["a", "b"]), case.model_path)
    assert_user_error(cli(case), "clay_pct", "twi_index", output=case.output, out_dir_empty=True)


@pytest.mark.parametrize("how", ["tag", "nan", "config_value"])
def test_layer_without_valid_pixel(case: Case, how: str) -> None:
    spec = case.stack.layers[2]  # ndvi
    h, w = spec.data.shape
    if how == "tag":
        write_raster(case.folder / "ndvi.tif", np.full((h, w), -9999.0, np.float32), nodata=-9999.0)
    elif how == "nan":
        write_raster(case.folder / "ndvi.tif", np.full((h, w), np.nan, np.float32))
    else:
        write_raster(case.folder / "ndvi.tif", np.full((h, w), -7, np.int16))
        case.config["nodata"]["values"] = [-7.0]
    assert_user_error(cli(case), "ndvi", output=case.output)


# --------------------------------------------------------------------------- model / labels


@pytest.mark.parametrize(
    ("unknown", "known", "classes", "label_dtype", "workers"),
    [
        ("wetland", "meadow", ["meadow", "orchard"], "auto", 1),
        ("wetland", "meadow", ["meadow", "orchard"], "object", 2),
        ("aardvark", "meadow", ["orchard", "meadow"], "object", 1),
        ("nursery", "meadow", ["orchard", "meadow"], "auto", 1),
        (5, 20, [20, 10], "auto", 1),
        (15, 20, [20, 10], "auto", 2),
        (25, 20, [20, 10], "auto", 1),
        (2.0, 1.0, [1.0, 3.0], "auto", 1),
    ],
)
def test_predicted_label_not_in_classes(
    tmp_path: Path, unknown: Any, known: Any, classes: list[Any], label_dtype: str, workers: int
) -> None:
    case = build_case(tmp_path, names=("elev", "slope"))
    case.config["processing"] = {"workers": workers, "memory_mb": 1}
    # elev ~ N(100, 30): both labels are predicted
    model = threshold_model(
        "elev", ["elev", "slope"], [(100.0, unknown), (np.inf, known)], label_dtype=label_dtype
    )
    save_model(model, case.model_path)
    case.config["model"]["classes"] = classes
    assert_user_error(cli(case), str(unknown), *map(str, classes), output=case.output)
    assert not (case.output.with_name("prediction.report.json")).exists()


def test_int_label_does_not_match_text_class(tmp_path: Path) -> None:
    """The model predicts the int 1; the config lists the text "1": not the same label."""
    case = build_case(tmp_path, names=("elev", "slope"))
    save_model(
        threshold_model("elev", ["elev", "slope"], [(100.0, 1), (np.inf, 2)]), case.model_path
    )
    case.config["model"]["classes"] = ["1", "2"]
    assert_user_error(cli(case), "1", "2", output=case.output)


def test_class_count_does_not_fit_dtype(case: Case) -> None:
    classes = ["forest", "water", "urban"] + [f"c{i}" for i in range(254)]  # codes 0..256
    case.config["model"]["classes"] = classes
    msg = assert_user_error(cli(case), output=case.output, out_dir_empty=True)
    assert "257 classes" in msg and "do not fit output.dtype uint8 (codes 0..255)" in msg, msg


def test_class_code_collides_with_output_nodata(case: Case) -> None:
    case.config["output"]["nodata"] = 1  # codes 0, 1, 2 for three classes
    msg = assert_user_error(cli(case), output=case.output, out_dir_empty=True)
    assert "output.nodata 1 collides with the code of class" in msg, msg


def test_output_nodata_outside_dtype(case: Case) -> None:
    case.config["output"].update(dtype="uint8", nodata=300)
    msg = assert_user_error(cli(case), output=case.output, out_dir_empty=True)
    assert "'output.nodata': 300 does not fit output.dtype uint8 (0..255)" in msg, msg


def test_existing_output_untouched(case: Case) -> None:
    case.output.write_bytes(b"precious bytes")
    os.utime(case.output, (1_000_000_000, 1_000_000_000))
    before = case.output.stat().st_mtime_ns
    proc = cli(case)
    msg = assert_user_error(proc)
    assert "prediction.tif" in msg, msg
    assert case.output.read_bytes() == b"precious bytes"
    assert case.output.stat().st_mtime_ns == before
    assert not case.output.with_name("prediction.report.json").exists()


def test_no_schema_available(tmp_path: Path) -> None:
    case = build_case(tmp_path, with_names=False)
    assert not hasattr(case.model, "feature_names_in_")
    msg = assert_user_error(cli(case), output=case.output, out_dir_empty=True)
    assert "which features the model expects" in msg, msg
    assert "model.scoring_file" in msg and "model.features" in msg, msg


def test_model_file_missing(case: Case) -> None:
    case.config["model"]["path"] = str(case.root / "absent_model.pkl")
    assert_user_error(cli(case), "absent_model.pkl", output=case.output, out_dir_empty=True)


def test_model_file_unreadable(case: Case) -> None:
    bad = case.root / "garbage_model.pkl"
    bad.write_bytes(b"this is not a pickle\x00\x01")
    case.config["model"]["path"] = str(bad)
    assert_user_error(cli(case), "garbage_model.pkl", output=case.output, out_dir_empty=True)


def test_scoring_file_missing(case: Case) -> None:
    case.config["model"]["scoring_file"] = str(case.root / "scoring_file_v_1_0_0.py")
    assert_user_error(cli(case), "scoring_file_v_1_0_0.py", output=case.output, out_dir_empty=True)


# --------------------------------------------------------------------------- scoring file

SCORING_V1 = """\
# ---------------------------------------------------------
# Copyright (c) Microsoft Corporation. All rights reserved.
# ---------------------------------------------------------
{prelude}
import json
import logging
import os
import pickle
import numpy as np
import pandas as pd
import joblib

import azureml.automl.core
from azureml.automl.core.shared import logging_utilities, log_server
from azureml.telemetry import INSTRUMENTATION_KEY

from inference_schema.schema_decorators import input_schema, output_schema
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType

input_sample = pd.DataFrame({{{columns}}})
output_sample = np.array([0])
try:
    log_server.enable_telemetry(INSTRUMENTATION_KEY)
    log_server.set_verbosity('INFO')
    logger = logging.getLogger('azureml.automl.core.scoring_script')
except:
    pass


def init():
    global model
    model_path = os.path.join(os.getenv('AZUREML_MODEL_DIR'), 'model.pkl')
    model = joblib.load(model_path)


@input_schema('data', PandasParameterType(input_sample))
@output_schema(NumpyParameterType(output_sample))
def run(data):
    result = model.predict(data)
    return json.dumps({{"result": result.tolist()}})
"""


def write_scoring_file(path: Path, features: list[str], prelude: str = "") -> Path:
    cols = ", ".join(f'"{f}": pd.Series([0.0], dtype="float64")' for f in features)
    path.write_text(SCORING_V1.format(prelude=prelude, columns=cols))
    return path


@pytest.mark.parametrize("hostile", [False, True], ids=["plain", "raises_if_executed"])
def test_scoring_file_schema_is_parsed_not_executed(tmp_path: Path, hostile: bool) -> None:
    order = ["ndvi", "elev", "slope"]
    case = build_case(tmp_path, model_features_=order, with_names=False)
    assert not hasattr(case.model, "feature_names_in_")
    marker = tmp_path / "executed.marker"
    prelude = f"open({str(marker)!r}, 'w').close()\nraise SystemExit(3)\n" if hostile else ""
    scoring = write_scoring_file(tmp_path / "scoring_file_v_1_0_0.py", order, prelude)
    case.config["model"]["scoring_file"] = str(scoring)
    proc = cli(case, None, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists(), "the scoring file was executed"
    ref = reference_from_config(case.config)
    assert ref.features == order
    report = load_report(case.output)
    assert report["features"] == order
    assert_run_matches(report, ref, case.output)


def test_scoring_file_relative_to_yaml(tmp_path: Path) -> None:
    order = ["slope", "elev"]
    case = build_case(tmp_path, names=("elev", "slope"), model_features_=order, with_names=False)
    write_scoring_file(tmp_path / "scoring_file_v_1_0_0.py", order)
    rel = {
        "rasters": {"folder": "covariates"},
        "nodata": case.config["nodata"],
        "model": {"path": "model.pkl", "scoring_file": "scoring_file_v_1_0_0.py"},
        "output": {"path": "out/prediction.tif"},
    }
    cfg = write_yaml(tmp_path / "config.yaml", rel)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = run_main(cfg, "--quiet", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    case.config["model"]["scoring_file"] = str(tmp_path / "scoring_file_v_1_0_0.py")
    assert_run_matches(load_report(case.output), reference_from_config(case.config), case.output)


SCORING_V2 = """\
import json
import os
import numpy as np
import pandas as pd
import joblib
from azureml.automl.core.shared import logging_utilities
from inference_schema.schema_decorators import input_schema, output_schema
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType
from inference_schema.parameter_types.standard_py_parameter_type import (
    StandardPythonParameterType,
)

raise SystemExit("never executed")

data_sample = PandasParameterType(pd.DataFrame({{{columns}}}))
input_sample = StandardPythonParameterType({{'data': data_sample}})
method_sample = StandardPythonParameterType("predict")
sample_global_params = StandardPythonParameterType({{"method": method_sample}})
result_sample = NumpyParameterType(np.array([0]))
output_sample = StandardPythonParameterType({{'Results': result_sample}})
"""


def test_scoring_file_v2_data_sample(tmp_path: Path) -> None:
    """AutoML scoring_file_v_2_0_0.py: the DataFrame is `data_sample`; an int64 column too."""
    order = ["slope", "landuse", "elev"]
    case = build_case(tmp_path, names=("elev", "slope"), model_features_=None, with_names=False)
    h, w = case.stack.layers[0].data.shape
    rng = np.random.default_rng(0)
    landuse = rng.integers(1, 6, (h, w)).astype(np.int16)
    landuse[rng.random((h, w)) < 0.1] = -1
    write_raster(case.folder / "landuse.tif", landuse, nodata=-1, layout=("striped", 3))
    pools = {
        "slope": case.stack.layers[1].data.ravel(),
        "elev": case.stack.layers[0].data.ravel(),
        "landuse": np.arange(1.0, 6.0),
    }
    pools = {k: v[np.isfinite(v) & (v != -9999.0)] for k, v in pools.items()}
    save_model(train_model(order, pools, ["a", "b", "c"], with_names=False), case.model_path)
    cols = ", ".join(
        f'"{f}": pd.Series([0], dtype="{"int64" if f == "landuse" else "float64"}")' for f in order
    )
    scoring = tmp_path / "scoring_file_v_2_0_0.py"
    scoring.write_text(SCORING_V2.format(columns=cols))
    case.config["model"]["scoring_file"] = str(scoring)
    case.config["nodata"]["threshold"] = 1  # fill single nodata values with the median
    proc = cli(case, None, "--quiet")
    assert proc.returncode == 0, proc.stderr
    ref = reference_from_config(case.config)
    assert ref.features == order
    assert ref.n_filled > 0
    assert_run_matches(load_report(case.output), ref, case.output)


def as_from_a_terminal(sig: signal.Signals, blocked: bool) -> None:
    """In the child before exec: ``sig`` handled by default, as a shell in a terminal starts a
    command (a suite run in the background inherits SIGINT ignored, which Python, and the
    tool, rightly keep ignoring); then blocked if asked, as a parent may leave it."""
    signal.signal(sig, signal.SIG_DFL)
    if blocked:
        signal.pthread_sigmask(signal.SIG_BLOCK, {sig})


@pytest.mark.parametrize(
    ("sig", "blocked"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["SIGINT", "SIGTERM", "SIGINT-blocked-by-parent"],
)
def test_interrupted_run_leaves_nothing_under_the_output_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sig: signal.Signals, blocked: bool
) -> None:
    """Stop the CLI in the middle of pass 2: no output, no report, nothing but the hidden
    partial raster and its journal; --resume from them gives the reference's map. A parent
    that blocked the signal (a mask outlives exec) does not make the run deaf to it."""
    case = build_case(tmp_path, height=300, width=300, names=("elev", "slope"))
    marker = tmp_path / "predicting"
    # the run stops at its second window of pass 2, after the first was written: no race
    save_model(PausingModel(case.model, marker), case.model_path)
    case.config["processing"] = {"workers": 1, "memory_mb": 1}
    cfg = case.write_config()
    # the CLI unpickles PausingModel from tests/helpers.py (run_cli adds this to its path)
    tests_dir = str(Path(__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(package_root()), tests_dir]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "windowed_classify", str(cfg), "--quiet"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=functools.partial(as_from_a_terminal, sig, blocked),
    )
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert marker.exists(), "the run never reached its second window"
        assert proc.poll() is None, "the run ended while it should be pausing"
        proc.send_signal(sig)
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the run did not stop on {sig.name}: {signal_state(proc.pid)}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0, "an interrupted run reported success"
    assert "Traceback" not in err, err
    stem = case.output.stem
    left = sorted(p.name for p in case.output.parent.iterdir())
    assert left == [f".{stem}.partial.journal.json", f".{stem}.partial.tif"], left
    assert "--resume" in err, err

    result = run_cli(cfg, "--resume", "--quiet")
    assert result.returncode == 0, result.stderr
    report = load_report(case.output)
    assert report["resumed"] is True
    assert_run_matches(report, reference_from_config(case.config), case.output)
    assert not [p.name for p in case.output.parent.iterdir() if p.name.startswith(".")]


# --------------------------------------------------------------------------- Python API


def test_api_raises_user_error(case: Case) -> None:
    """Through `run()`, user errors are `UserError`s whose text names the culprit."""
    import windowed_classify
    from windowed_classify.errors import UserError

    bad = {**case.config, "rasters": {**case.config["rasters"], "recursive": True}}
    with pytest.raises(UserError, match="recursive"):
        windowed_classify.run(bad)
    with pytest.raises(UserError, match="folder"):
        windowed_classify.load_config({"rasters": {}})  # missing required keys
    windowed_classify.run(case.config)  # fine
    before = case.output.read_bytes()
    with pytest.raises(UserError, match="prediction.tif"):
        windowed_classify.run(case.config)  # exists, no overwrite
    assert case.output.read_bytes() == before
