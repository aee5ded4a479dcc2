"""The QGIS plugin's pure logic (qgis_plugin/windowed_classify_qgis/client.py), without QGIS:
the config it writes (only what the dialog sets), the command lines, the version floor, the
progress protocol, error lines, ``check --json`` and the subprocess driver, against
tests/qgis/fake_tool.py and against the real tool of this checkout. The real QGIS test is
tests/qgis/qgis_integration.py, run by .ci/qgis.sh."""

from __future__ import annotations

import ast
import csv
import importlib
import json
import math
import stat
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from helpers import write_raster

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PLUGIN = ROOT / "qgis_plugin" / "windowed_classify_qgis"
FAKE = HERE / "fake_tool.py"


# The plugin's package imports nothing from QGIS (only classFactory does)
sys.path.insert(0, str(PLUGIN.parent))
client = importlib.import_module("windowed_classify_qgis.client")
runner = importlib.import_module("windowed_classify_qgis.runner")


def _tool(*args, **options) -> list[str]:
    """The real tool of this checkout, through the client's command line."""
    return client.tool_command(sys.executable, *args, **options)


# ------------------------------------------------------------------------------ isolation


@pytest.mark.parametrize("module", ["client.py", "runner.py"])
def test_the_client_needs_only_the_standard_library_and_pyyaml(module):
    tree = ast.parse((PLUGIN / module).read_text(encoding="utf-8"))
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    relative = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level}
    outside = {n.split(".")[0] for n in names if n not in relative}
    outside -= set(sys.stdlib_module_names) | {"__future__"}
    assert outside <= {"yaml"}  # QGIS's Processing imports PyYAML itself
    assert relative <= {"client"}


def test_package_init_imports_qgis_only_in_class_factory():
    tree = ast.parse((PLUGIN / "__init__.py").read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    modules = [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
    modules += [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in modules if m.split(".")[0] in ("qgis", "PyQt5", "processing")]
    assert any(isinstance(n, ast.FunctionDef) and n.name == "classFactory" for n in tree.body)


# ------------------------------------------------------------------------------ config


def test_a_field_left_empty_is_not_written():
    assert client.build_config() == {}
    cfg = client.build_config(folder="cov", extensions=None, threshold=None, workers=None)
    assert cfg == {"rasters": {"folder": str(Path("cov").absolute())}}
    cfg = client.build_config(nodata_values=[], threshold=0, use_file_nodata=False, cog=False)
    assert cfg == {  # given values are written, also when falsy
        "nodata": {"values": [], "use_file_nodata": False, "threshold": 0},
        "output": {"cog": False},
    }


def test_a_folder_config_gets_the_tools_extensions_with_vrt(tmp_path):
    import windowed_classify

    (tmp_path / "cov").mkdir()
    cfg = client.build_config(
        folder=str(tmp_path / "cov"), model="m.pkl", output=str(tmp_path / "o.tif")
    )
    path = client.write_config(tmp_path / "c.yaml", cfg)
    assert "extensions" not in cfg["rasters"] and "nodata" not in cfg
    loaded = windowed_classify.load_config(path)
    assert ".vrt" in [e.lower() for e in loaded.rasters.extensions]
    assert loaded.nodata.threshold == 0  # what the tool fills in, not the plugin


def test_config_round_trips_through_the_tools_loader(tmp_path):
    import windowed_classify

    (tmp_path / "cov").mkdir()
    cfg = client.build_config(
        folder=str(tmp_path / "cov"),
        extensions=client.parse_extensions("tif; .VRT"),
        model=str(tmp_path / "model.pkl"),
        scoring_file=str(tmp_path / "scoring_file_v_1_0_0.py"),
        nodata_values=client.parse_numbers("-9999, -3.3999999521443642e+38 1e30"),
        use_file_nodata=False,
        threshold=2,
        output=str(tmp_path / "out" / "prediction.tif"),
        overwrite=True,
        probabilities=str(tmp_path / "out" / "proba.tif"),
        cog=True,
        memory_mb=64,
        workers=3,
    )
    path = client.write_config(client.config_path_for(cfg["output"]["path"]), cfg, "/venv/py")
    assert path == tmp_path / "out" / "prediction.config.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# windowed_classify config")
    assert f"/venv/py -m windowed_classify run {path}" in text
    assert yaml.safe_load(text) == cfg
    loaded = windowed_classify.load_config(path)
    assert loaded.rasters.folder == tmp_path / "cov"
    assert [e.lower() for e in loaded.rasters.extensions] == [".tif", ".vrt"]
    assert loaded.nodata.values == (-9999.0, -3.3999999521443642e38, 1e30)
    assert (loaded.nodata.threshold, loaded.nodata.use_file_nodata) == (2, False)
    assert loaded.model.scoring_file == tmp_path / "scoring_file_v_1_0_0.py"
    assert loaded.output.path == tmp_path / "out" / "prediction.tif"
    assert (loaded.output.overwrite, loaded.output.cog) == (True, True)
    assert loaded.output.probabilities == tmp_path / "out" / "proba.tif"
    assert loaded.output.confidence is None
    assert (loaded.processing.memory_mb, loaded.processing.workers) == (64, 3)


def test_config_from_layers_keeps_their_order_and_names(tmp_path):
    import windowed_classify

    files = client.layer_files(
        [("Elev dem", str(tmp_path / "b.tif")), ("yes", str(tmp_path / "a.tif"))]
    )
    cfg = client.build_config(files=files, model="m.pkl", output=str(tmp_path / "o.tif"))
    path = client.write_config(tmp_path / "c.yaml", cfg)
    loaded = windowed_classify.load_config(path)
    names = [name for name, _path, _band in loaded.rasters.files]
    assert names == ["Elev dem", "yes"]  # 'yes' stays text, not true
    assert Path(loaded.model.path).is_absolute()


@pytest.mark.parametrize(
    "value",
    [
        "C:\\Users\\Ana\\Böden\\cov",
        'say "hi": # not a comment',
        "  leading and trailing  ",
        "null",
        "tab\there",
        "line\u2028separator",
        "",
        1e30,
        -3.3999999521443642e38,
        -0.0,
        5e-324,
        math.inf,
        -9999,
        True,
        None,
    ],
)
def test_config_text_keeps_every_value(value):
    cfg = {"k": value, str(value) or "e": [value, {"n": value}]}
    back = yaml.safe_load(client.config_text(cfg, "/my venv/python", "/d/c.yaml"))
    assert back == cfg and type(back["k"]) is type(value)
    if isinstance(value, float):
        assert math.copysign(1, back["k"]) == math.copysign(1, value)


def test_parameters_parsing():
    assert client.parse_numbers(" -9999; 0,1.5  -3.4e38 ") == [-9999, 0, 1.5, -3.4e38]
    assert client.parse_numbers("") is None and client.parse_numbers(None) is None
    assert client.parse_numbers(" None ") == []  # NaN only, said on purpose
    with pytest.raises(client.ClientError, match="'abc' is not a number"):
        client.parse_numbers("1, abc")
    assert client.parse_extensions("") is None
    assert client.parse_extensions("tif,.TIF, vrt") == [".tif", ".vrt"]
    with pytest.raises(client.ClientError, match="two layers are named 'a'"):
        client.layer_files([("a", "/x/a.tif"), ("a", "/y/a.tif")])
    assert client.layer_files([]) == {}


def test_paths_are_absolute_and_gdal_sources_kept():
    files = {
        "v": "/vsicurl/https://h/a.tif",
        "n": 'NETCDF:"/d/f.nc":tas',
        "h": "https://h/a.tif",
        "r": "rel/a.tif",
    }
    got = client.build_config(files=files)["rasters"]["files"]
    assert [got[k] for k in "vnh"] == [files[k] for k in "vnh"]
    assert got["r"] == str(Path("rel/a.tif").absolute())
    windows = client.absolute("C:\\d\\a.tif")
    assert windows != "C:\\d\\a.tif" or sys.platform == "win32"  # a drive letter is a path
    assert client.config_path_for("/d/pred.tif") == Path("/d/pred.config.yaml")


# ------------------------------------------------------------------------------ interpreter


def test_interpreter_from_environment_setting_or_venv_folder(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text("", encoding="utf-8")
    other = tmp_path / "other_python"
    other.write_text("", encoding="utf-8")
    env = {client.ENV_PYTHON: str(venv)}
    assert client.resolve_interpreter(str(other), env) == (
        python,
        "environment variable WINDOWED_CLASSIFY_PYTHON",
    )
    got, source = client.resolve_interpreter(str(other), {client.ENV_PYTHON: " "})
    assert got == other and "Processing setting" in source
    with pytest.raises(client.ClientError, match="WINDOWED_CLASSIFY_PYTHON"):
        client.resolve_interpreter("", {})
    with pytest.raises(client.ClientError, match="does not exist"):
        client.resolve_interpreter(str(tmp_path / "nope"), {})
    with pytest.raises(client.ClientError, match="without bin/python"):
        client.python_in(tmp_path)


def test_tool_environment_drops_qgis_python_and_proj_paths():
    env = client.tool_environment(
        {"PATH": "/bin", "PYTHONPATH": "/qgis/python", "PROJ_LIB": "/qgis/proj", "X": "1"}
    )
    assert env["PATH"] == "/bin" and env["X"] == "1"
    assert "PYTHONPATH" not in env and "PROJ_LIB" not in env
    assert env["PYTHONIOENCODING"] == "utf-8" and env["PYTHONUNBUFFERED"] == "1"


def _fake_interpreter(folder: Path) -> Path:
    """An executable standing for venv/bin/python: it runs fake_tool.py with its arguments."""
    python = folder / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n', encoding="utf-8")
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return python


@pytest.mark.skipif(sys.platform == "win32", reason="the stand-in interpreter is a sh script")
def test_the_version_floor_with_a_fake_tool(tmp_path, monkeypatch):
    python = _fake_interpreter(tmp_path)
    floor = client.version_tuple(client.MIN_TOOL_VERSION)
    older = "0.1.0"  # the last tool without check --json, design and assess
    assert client.version_tuple(older) < floor
    newer = ".".join(map(str, (floor[0], floor[1] + 10, 0)))  # 0.12.0 > 0.2.0: numbers
    monkeypatch.setenv("FAKE_TOOL_VERSION", older)
    with pytest.raises(
        client.ClientError, match=f"needs windowed_classify {client.MIN_TOOL_VERSION}"
    ):
        client.tool_version(python)
    for ok in (client.MIN_TOOL_VERSION, newer, client.MIN_TOOL_VERSION + ".post1"):
        monkeypatch.setenv("FAKE_TOOL_VERSION", ok)
        assert client.tool_version(python) == f"python -m windowed_classify {ok}"
    monkeypatch.setenv("FAKE_TOOL_VERSION", "unknown")
    with pytest.raises(client.ClientError, match=f"{python} runs python -m windowed_classify"):
        client.tool_version(python)


def test_version_floor_rules():
    assert client.version_tuple("python -m windowed_classify 0.2.0") == (0, 2, 0)
    assert client.version_tuple("x 1.10rc1") == (1, 10)
    assert client.version_tuple("") is None
    assert client.require_version("t 0.3", "/py", floor="0.2.0") == "t 0.3"
    with pytest.raises(client.ClientError, match="needs windowed_classify 1.0 or later"):
        client.require_version("t 0.9.9", "/py", floor="1.0")


def test_the_real_tool_meets_the_floor():
    import windowed_classify

    line = client.tool_version(sys.executable)
    assert line.endswith(windowed_classify.__version__)


def test_the_tool_runs_outside_the_callers_folder(tmp_path, monkeypatch):
    # python -m would import a windowed_classify folder of the working directory first
    shadow = tmp_path / "windowed_classify"
    shadow.mkdir()
    (shadow / "__main__.py").write_text("print('shadowed')", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert "shadowed" not in client.read_version(sys.executable)
    assert client.neutral_cwd(sys.executable) == str(Path(sys.executable).parent)


# ------------------------------------------------------------------------------ commands


def test_commands():
    assert client.tool_command("/py", "run", "/c.yaml", resume=True, overwrite=False) == [
        "/py",
        "-m",
        "windowed_classify",
        "run",
        "/c.yaml",
        "--resume",
        "--progress",
        "json",
    ]
    assert client.tool_command("/py", "check", "c.yaml", json=True, progress=False)[3:] == [
        "check",
        "c.yaml",
        "--json",
    ]
    assert client.tool_command("/py", "sample", "c.yaml", "p.csv", output="o.csv")[3:] == [
        "sample",
        "c.yaml",
        "p.csv",
        "--output",
        "o.csv",
        "--progress",
        "json",
    ]
    design = client.tool_command(
        "/py", "design", "m.tif", output=Path("/o.gpkg"), n=None, target_se=0.01, seed=0
    )
    assert design[3:] == [
        "design",
        "m.tif",
        "--output",
        "/o.gpkg",
        "--target-se",
        "0.01",
        "--seed",
        "0",
        "--progress",
        "json",
    ]


def test_the_tool_accepts_the_clients_command_lines(tmp_path):
    """Every option name the client builds is one the tool's parser knows."""
    from windowed_classify.cli import build_parser

    parser = build_parser()
    for argv in (
        _tool("run", "c.yaml", resume=True, overwrite=True),
        _tool("check", "c.yaml", json=True, progress=False),
        _tool("sample", "c.yaml", "p.csv", output="o.csv", overwrite=True),
        _tool(
            "design",
            "m.tif",
            output="o.gpkg",
            n=5,
            strata="s.tif",
            allocation="equal",
            minimum=1,
            seed=3,
            overwrite=True,
        ),
        _tool("design", "m.tif", output="o.gpkg", target_se=0.01, expected_ua="0.7,0.9"),
        _tool(
            "assess",
            "m.tif",
            "p.gpkg",
            reference="ref",
            strata="s.tif",
            layer="points",
            output="a.json",
            overwrite=True,
        ),
    ):
        parser.parse_args(argv[3:])  # argparse exits on an unknown option


# ------------------------------------------------------------------------------ progress


def test_parse_event():
    line = '{"event": "progress", "stage": "pass2", "done": 5, "total": 10, "unit": "px"}'
    assert runner.parse_event(line)["done"] == 5
    assert runner.parse_event('  {"event": "finished", "outputs": {}}\n')["event"] == "finished"
    for other in ("INFO: {x}", "{not json", "[1, 2]", '{"no": "event"}', '{"event": 3}', ""):
        assert runner.parse_event(other) is None


def test_overall_progress_weights_the_passes():
    p = runner.OverallProgress()
    assert p.update({"event": "progress", "stage": "pass1", "done": 50, "total": 100}) == 15
    assert p.update({"event": "progress", "stage": "pass1", "done": 100, "total": 100}) == 30
    assert p.update({"event": "progress", "stage": "pass2", "done": 0, "total": 10}) == 30
    assert p.update({"event": "progress", "stage": "pass2", "done": 5, "total": 10}) == 65
    assert p.update({"event": "progress", "stage": "pass1", "done": 0, "total": 10}) == 65
    assert p.update({"event": "finished"}) == 100

    only2 = runner.OverallProgress()  # statistics cached, resumed, or fused into pass 2
    assert only2.update({"event": "progress", "stage": "pass2", "done": 1, "total": 4}) == 25
    assert only2.update({"event": "progress", "stage": "pass2", "done": 9, "total": 4}) == 100
    odd = runner.OverallProgress()
    assert odd.update({"event": "progress", "stage": "pass2", "done": "x", "total": 4}) == 0
    assert odd.update({"event": "progress", "stage": "pass3", "done": 1, "total": 1}) == 0
    assert odd.update({"event": "progress", "stage": "pass2", "done": 0, "total": 0}) == 100


def test_progress_text_and_its_throttle():
    event = {"event": "progress", "stage": "pass2", "done": 45, "total": 100, "rate": 1.23e6}
    assert runner.progress_text(event) == "pass 2 of 2: classify: 45 %, 1.2 Mpx/s"
    now = [0.0]
    text = runner.ProgressText(every=2.0, clock=lambda: now[0])
    assert text({**event, "stage": "pass1"}).startswith("pass 1 of 2")
    assert text(event).startswith("pass 2 of 2")  # a new stage: at once
    now[0] = 1.0
    assert text(event) is None
    now[0] = 3.5
    assert text(event) is not None
    assert text({"event": "finished"}) is None
    done = {"event": "progress", "stage": "pass1", "total": 800000, "elapsed": 0.5, "rate": 1.6e6}
    assert runner.stage_summary(done) == "pass 1 of 2: statistics: 800,000 px in 0.5 s (1.6 Mpx/s)"


def test_line_kinds():
    assert runner.line_kind("error: bad") == "error"
    assert runner.line_kind("interrupted: stopped") == "interrupted"
    assert runner.line_kind("WARNING: x") == "warning"
    assert runner.line_kind("INFO: x") == "info"
    assert runner.line_kind("Traceback (most recent call last):") == "other"


# ------------------------------------------------------------------------------ errors


def test_failure_messages():
    stderr = ["INFO: x", "error: config key 'model.path': file not found: /m.pkl"]
    assert client.failure_message("run", stderr) == (
        "config key 'model.path': file not found: /m.pkl"
    )
    argparse_lines = ["usage: ...", "python -m windowed_classify run: error: bad --workers"]
    assert client.failure_message("run", argparse_lines) == "bad --workers"
    missing = ["/v/bin/python: No module named windowed_classify"]
    assert "not installed in /v/bin/python" in client.failure_message(
        "run", missing, "/v/bin/python"
    )
    trace = ["Traceback (most recent call last):", '  File "x"', "MemoryError: boom"]
    assert client.failure_message("run", trace) == "MemoryError: boom"
    assert client.failure_message("run", ["interrupted: stop", "x"]) == "interrupted: stop"
    assert client.failure_message("run", [], returncode=9) == (
        "windowed_classify run exited with code 9"
    )


def test_explanations_name_the_dialogs_options():
    assert "untick 'Continue an interrupted run'" in client.explain(
        "cannot resume: since the interrupted run, the model changed.", resume=True
    )
    assert "tick 'Replace existing outputs'" in client.explain(
        "output /o.tif already exists; set output.overwrite: true or pass --overwrite"
    )
    assert client.explain("other") == "other"
    fields = {"--n": "Sample size", "--target-se": "Target SE", "--seed": "Seed"}
    assert client.explain("give --n N, or --target-se S", fields=fields) == (
        "give --n N, or --target-se S (in the dialog, --n is 'Sample size'; --target-se is "
        "'Target SE')"
    )
    assert client.explain("see --no-x and --nx", fields=fields) == "see --no-x and --nx"
    hint = client.resume_hint("/v/bin/python", "/d/my run/p.config.yaml")
    assert '/v/bin/python -m windowed_classify run "/d/my run/p.config.yaml" --resume' in hint


# ------------------------------------------------------------------------------ check --json


def _check(config: Path) -> runner.RunResult:
    return runner.run_tool(_tool("check", config, json=True, progress=False))


def test_check_json_of_the_real_tool_is_summarised(case, tmp_path):
    out = tmp_path / "q" / "prediction.tif"
    cfg = client.build_config(
        folder=str(case.folder),
        model=str(case.model_path),
        output=str(out),
        nodata_values=[-9999],
    )
    result = _check(client.write_config(tmp_path / "c.yaml", cfg))
    doc = client.check_document(result.stdout)
    assert result.returncode == 0 and doc["ok"] is True, result.stderr
    summary = client.check_summary(doc)
    assert summary[0].startswith("grid: 45 x 37 pixels, EPSG:32633")
    for name in ("elev", "slope", "ndvi"):
        assert f"  {name}: ok ({case.folder / (name + '.tif')})" in summary
    assert any(line.startswith("classes: 0 forest") for line in summary)
    assert f"output path: {out} (classes, 1 band(s) uint8, nodata 255)" in summary
    assert summary[-1] == "OK: the run would start."

    out.parent.mkdir()
    out.write_bytes(b"")  # an output the run may not replace
    (case.folder / "extra.tif").write_bytes((case.folder / "elev.tif").read_bytes())
    doc = client.check_document(_check(tmp_path / "c.yaml").stdout)
    assert doc["ok"] is False and doc["warnings"]  # the unused layer
    problems = client.check_problems(doc)
    assert problems.startswith("NOT READY: output") and "already exists" in problems
    assert "tick 'Replace existing outputs'" in client.explain(problems)
    assert client.check_summary(doc)[-1] == "NOT READY: 1 problem(s)"


def test_check_of_a_config_the_tool_cannot_read(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rasters: {folder: .}\nnodata: {threshold: -1}\n", encoding="utf-8")
    result = _check(bad)
    assert result.returncode != 0 and client.check_document(result.stdout) is None
    assert "nodata.threshold" in client.failure_message("check", result.stderr)


def test_the_grid_crs_of_a_sampling_config(tmp_path):
    """The Sample algorithm reprojects the points into the CRS check names for the grid."""
    data = np.arange(12, dtype="float32").reshape(3, 4)
    layer = write_raster(tmp_path / "cov" / "a.tif", data, crs="EPSG:3035")
    cfg = client.build_config(folder=str(tmp_path / "cov"))  # no model: a sampling config
    doc = client.check_document(_check(client.write_config(tmp_path / "s.yaml", cfg)).stdout)
    assert doc["ok"] is False  # a run needs a model; sampling does not
    with rasterio.open(layer) as src:
        assert rasterio.crs.CRS.from_wkt(doc["grid"]["crs_wkt"]) == src.crs


def test_check_summary_of_missing_features_and_unsupported_outputs():
    doc = {
        "ok": False,
        "grid": None,
        "layers": [{"name": "b", "file": "/f.tif", "band": 2, "status": "unused"}],
        "model": {
            "path": "/m.pkl",
            "task": "regression",
            "task_source": "auto",
            "features": ["a", "c"],
            "features_source": "model.features",
            "missing_features": ["a", "c"],
            "classes": None,
        },
        "outputs": [
            {
                "key": "confidence",
                "path": "/c.tif",
                "what": "highest class probability",
                "bands": 1,
                "dtype": "uint8",
                "nodata": "255",
                "supported": False,
                "reason": "a regression has no classes",
            }
        ],
        "estimate": None,
        "problems": ["features a, c are missing", "x"],
    }
    assert client.check_summary(doc) == [
        "layers: 1 found",
        "  b: unused (/f.tif, band 2)",
        "model: /m.pkl: regression (auto); 2 feature(s) from model.features",
        "  missing features: a, c",
        "output confidence: /c.tif (highest class probability, 1 band(s) uint8, nodata 255): "
        "NOT SUPPORTED, a regression has no classes",
        "NOT READY: 2 problem(s)",
    ]
    assert client.check_problems(doc) == "NOT READY:\n  - features a, c are missing\n  - x"


# ------------------------------------------------------------------------------ driver


def _fake(*args: str) -> list[str]:
    return [sys.executable, str(FAKE), *args]


def test_run_forwards_progress_logs_and_the_finished_event(tmp_path):
    out = str(tmp_path / "p.tif")
    percents: list[float] = []
    logs: list[tuple[str, str]] = []
    result = runner.run_tool(
        _fake("ok", out),
        env=client.tool_environment({"PATH": "/usr/bin:/bin"}),
        on_progress=lambda pct, event: percents.append(pct),
        on_log=lambda kind, line: logs.append((kind, line)),
    )
    assert result.returncode == 0 and not result.interrupted
    assert percents == [0, 15, 30, 30, 58, 100, 100]
    assert result.outputs == {"classes": out, "qml": out + ".qml"}
    assert result.report == out + ".report.json"
    kinds = dict((line.split(":")[0], kind) for kind, line in logs)
    assert kinds["INFO"] == "info" and kinds["WARNING"] == "warning"
    assert ("stdout", f"classified: {out}") in logs
    summaries = [line for kind, line in logs if line.startswith("pass ")]
    assert summaries == [
        "pass 1 of 2: statistics: 1,000 px in 0.2 s (1.5 Mpx/s)",
        "pass 2 of 2: classify: 100 px in 0.2 s (1.5 Mpx/s)",
    ]
    assert not any(line.startswith("{") for _, line in logs)  # protocol lines are not log


def test_run_without_pass1_spans_pass2_over_the_whole_bar(tmp_path):
    percents: list[float] = []
    runner.run_tool(
        _fake("pass2only", str(tmp_path / "p.tif")), on_progress=lambda p, e: percents.append(p)
    )
    assert percents == [0, 40, 100, 100]


def test_run_reports_the_one_line_error():
    result = runner.run_tool(_fake("error"))
    assert result.returncode != 0 and result.outputs == {} and result.report is None
    assert client.failure_message("run", result.stderr) == (
        "config key 'nodata.threshold': expected an integer >= 0, got -1"
    )


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is POSIX")
def test_cancel_sends_sigterm_and_the_tool_keeps_its_journal(tmp_path):
    journal = tmp_path / ".p.partial.journal.json"
    seen: list[dict] = []
    result = runner.run_tool(
        _fake("slow", str(journal)),
        is_canceled=lambda: any(e.get("stage") == "pass2" for e in seen),
        on_progress=lambda p, e: seen.append(e),
        poll_seconds=0.05,
    )
    assert result.canceled and not result.killed and result.interrupted
    assert result.returncode != 0
    assert journal.exists()
    assert any("--resume" in line for line in result.stderr)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is POSIX")
def test_a_tool_deaf_to_sigterm_is_killed_after_the_grace_period():
    started = time.monotonic()
    seen: list[dict] = []
    result = runner.run_tool(
        _fake("deaf"),
        is_canceled=lambda: bool(seen),
        on_progress=lambda p, e: seen.append(e),
        poll_seconds=0.05,
        grace_seconds=0.5,
    )
    assert result.canceled and result.killed and result.returncode != 0
    assert time.monotonic() - started < 20


def test_a_missing_interpreter_is_one_clear_error(tmp_path):
    with pytest.raises(client.ClientError, match="cannot start"):
        runner.run_tool([str(tmp_path / "nope" / "python"), "-m", "x"])
    with pytest.raises(client.ClientError, match="cannot start"):
        client.read_version(tmp_path / "nope" / "python")


# ------------------------------------------------------------------------------ after the map


def test_design_then_assess_through_the_client(tmp_path):
    """The two commands as the plugin runs them: outputs from the finished event."""
    data = np.repeat(np.array([1, 2, 3], dtype="uint8"), 400).reshape(30, 40)
    class_map = write_raster(tmp_path / "map.tif", data, nodata=0)
    points = tmp_path / "points.csv"
    drawn = runner.run_tool(
        _tool("design", class_map, output=points, n=30, minimum=5, seed=4, overwrite=True)
    )
    assert drawn.returncode == 0, drawn.stderr
    assert set(drawn.outputs) == {"points", "design"} and drawn.outputs["points"] == str(points)
    assert Path(drawn.outputs["design"]).is_file() and drawn.stdout
    with open(points, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 30
    for row in rows:  # a perfect reference: the map's own class
        row["reference"] = row["map_class"]
    with open(points, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    report = tmp_path / "acc.json"
    assessed = runner.run_tool(
        _tool("assess", class_map, points, reference="reference", output=report)
    )
    assert assessed.returncode == 0, assessed.stderr
    outputs = assessed.outputs
    assert outputs["report"] == str(report) and set(outputs) == {"report", "markdown", "table"}
    assert all(Path(p).is_file() for p in outputs.values())
    assert json.loads(report.read_text())["overall_accuracy"]["estimate"] == 1.0
    assert any("overall" in line for line in assessed.stdout)
    with open(outputs["table"], newline="", encoding="utf-8") as f:
        assert [r["class"] for r in csv.DictReader(f)] == ["1", "2", "3", "overall"]


# ------------------------------------------------------------------------------ sampling


def test_points_csv_and_sample_csv(tmp_path):
    points = tmp_path / "points.csv"
    skipped = client.write_points_csv(
        points,
        ["plot", "x", "when"],
        [(0, 500000.5, 6000000.25, ["007", 1.0, None]), (3, 1e-7, -2.5, [None, 2, "t"])],
    )
    assert skipped == ["x"]
    lines = points.read_text(encoding="utf-8").splitlines()
    assert lines == ["_qgis_row,plot,when,x,y", "0,007,,500000.5,6000000.25", "3,,t,1e-07,-2.5"]
    out = tmp_path / "out.csv"
    out.write_text(
        "_qgis_row,plot,when,x,y,elev,ndvi\n0,007,,500000.5,6000000.25,0.10000000149011612,\n"
        "3,,t,1e-07,-2.5,,\n",
        encoding="utf-8",
    )
    layers, values = client.read_sample_csv(out, lines[0].split(","))
    assert layers == ["elev", "ndvi"]
    assert values == {0: [0.10000000149011612, None], 3: [None, None]}
