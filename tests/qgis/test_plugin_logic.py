"""The QGIS plugin's pure logic (qgis_plugin/windowed_classify_qgis/client.py), without QGIS:
config writing, commands, the progress protocol, error lines and the subprocess driver
(against tests/qgis/fake_tool.py). The real QGIS test is tests/qgis/qgis_integration.py,
run by .ci/qgis.sh."""

from __future__ import annotations

import ast
import importlib.util
import math
import sys
import time
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PLUGIN = ROOT / "qgis_plugin" / "windowed_classify_qgis"
FAKE = HERE / "fake_tool.py"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


client = _load("windowed_classify_qgis_client", PLUGIN / "client.py")


# ------------------------------------------------------------------------------ isolation


def test_client_imports_nothing_from_qgis():
    tree = ast.parse((PLUGIN / "client.py").read_text(encoding="utf-8"))
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [n for n in names if n.split(".")[0] in ("qgis", "PyQt5", "processing")]
    assert "windowed_classify" not in [n.split(".")[0] for n in names]  # a client of the CLI


def test_package_init_imports_qgis_only_in_class_factory():
    tree = ast.parse((PLUGIN / "__init__.py").read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    modules = [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
    modules += [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in modules if m.split(".")[0] in ("qgis", "PyQt5", "processing")]
    assert any(isinstance(n, ast.FunctionDef) and n.name == "classFactory" for n in tree.body)


# ------------------------------------------------------------------------------ config


def test_config_from_folder_round_trips_through_the_tools_loader(tmp_path):
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
        workers=0,  # all cores: left to the tool
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
    assert loaded.processing.memory_mb == 64
    assert loaded.processing.workers is None


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
    ],
)
def test_yaml_strings_survive(value):
    assert yaml.safe_load(client.to_yaml({"k": value, value or "e": [value]})) == {
        "k": value,
        value or "e": [value],
    }


@pytest.mark.parametrize(
    "value", [1e30, -3.3999999521443642e38, 1e-05, 0.1, -0.0, 5e-324, 2.0, -9999, 0, 255]
)
def test_yaml_numbers_stay_numbers(value):
    back = yaml.safe_load(client.to_yaml({"v": [value]}))["v"][0]
    assert type(back) is type(value) and back == value
    assert math.copysign(1, back) == math.copysign(1, value)


def test_yaml_special_floats_and_scalars():
    back = yaml.safe_load(client.to_yaml({"a": [math.nan, math.inf, -math.inf], "b": None}))
    assert math.isnan(back["a"][0]) and back["a"][1:] == [math.inf, -math.inf]
    assert back["b"] is None
    assert yaml.safe_load(client.to_yaml({"e": {}, "t": True})) == {"e": {}, "t": True}


def test_parameters_parsing():
    assert client.parse_numbers(" -9999; 0,1.5  -3.4e38 ") == [-9999, 0, 1.5, -3.4e38]
    assert client.parse_numbers("") == []
    with pytest.raises(client.ClientError, match="'abc' is not a number"):
        client.parse_numbers("1, abc")
    assert client.parse_extensions("") == [".tif", ".tiff"]
    assert client.parse_extensions("tif,.TIF, vrt") == [".tif", ".vrt"]
    with pytest.raises(client.ClientError, match="two layers are named 'a'"):
        client.layer_files([("a", "/x/a.tif"), ("a", "/y/a.tif")])
    with pytest.raises(client.ClientError, match="no raster layers"):
        client.layer_files([])


def test_config_needs_one_source_a_model_and_an_output():
    with pytest.raises(client.ClientError, match="either a folder .* or raster layers"):
        client.build_config(model="m", output="o.tif")
    with pytest.raises(client.ClientError, match="not both"):
        client.build_config(folder="f", files={"a": "a.tif"}, model="m", output="o.tif")
    with pytest.raises(client.ClientError, match="no model"):
        client.build_config(folder="f", model="", output="o.tif")
    cfg = client.build_config(folder="f", model="m", output="o.tif", nodata_values=[])
    assert cfg["nodata"]["values"] == []  # NaN only: the user's choice, not the default
    cfg = client.build_config(files={"a": "/vsicurl/https://h/a.tif"}, model="m", output="o")
    assert cfg["rasters"]["files"]["a"] == "/vsicurl/https://h/a.tif"  # URLs kept as given
    files = {"n": 'NETCDF:"/d/f.nc":tas', "h": "https://h/a.tif", "w": "C:\\d\\a.tif"}
    got = client.build_config(files=files, model="m", output="o")["rasters"]["files"]
    assert got["n"] == files["n"] and got["h"] == files["h"]
    assert got["w"] != files["w"] or sys.platform == "win32"  # a drive letter is a path


def test_sidecar_names():
    assert client.config_path_for("/d/pred.tif") == Path("/d/pred.config.yaml")
    assert client.style_path_for("/d/pred.tif") == Path("/d/pred.qml")
    assert client.report_path_for("/d/pred.tif") == Path("/d/pred.report.json")
    assert client.journal_path_for("/d/pred.tif") == Path("/d/.pred.partial.journal.json")


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


# ------------------------------------------------------------------------------ commands


def test_commands():
    assert client.build_command("/py", "run", "/c.yaml", progress=True, resume=True) == [
        "/py",
        "-m",
        "windowed_classify",
        "run",
        "/c.yaml",
        "--resume",
        "--progress",
        "json",
    ]
    assert client.build_command("/py", "check", "c.yaml", workers=2, overwrite=True) == [
        "/py",
        "-m",
        "windowed_classify",
        "check",
        "c.yaml",
        "--workers",
        "2",
    ]
    assert client.build_command(
        "/py", "sample", "c.yaml", points="p.csv", output="o.csv", overwrite=True
    )[3:] == ["sample", "c.yaml", "p.csv", "-o", "o.csv", "--overwrite"]
    with pytest.raises(ValueError):
        client.build_command("/py", "sample", "c.yaml")
    assert client.version_command("/py") == ["/py", "-m", "windowed_classify", "--version"]


# ------------------------------------------------------------------------------ progress


def test_parse_event():
    line = '{"event": "progress", "stage": "pass2", "done": 5, "total": 10, "unit": "px"}'
    assert client.parse_event(line)["done"] == 5
    assert client.parse_event('  {"event": "finished", "outputs": {}}\n')["event"] == "finished"
    for other in ("INFO: {x}", "{not json", "[1, 2]", '{"no": "event"}', '{"event": 3}', ""):
        assert client.parse_event(other) is None


def test_parse_bar_from_tqdm_lines():
    bar = "pass 1: statistics:  83%|████████▎ | 666k/800k [00:00<00:00, 6.16Mpx/s]"
    assert client.parse_bar(bar) == {
        "event": "progress",
        "stage": "pass1",
        "done": 83,
        "total": 100,
        "unit": "%",
        "bar": bar,
    }
    start = "pass 2: classify:   0%|          | 0.00/200k [00:00<?, ?px/s]"
    assert client.parse_bar(start)["stage"] == "pass2"
    assert client.parse_bar("INFO: pass 2 took 3 s") is None


def test_overall_progress_weights_the_passes():
    p = client.OverallProgress()
    assert p.update({"event": "progress", "stage": "pass1", "done": 50, "total": 100}) == 15
    assert p.update({"event": "progress", "stage": "pass1", "done": 100, "total": 100}) == 30
    assert p.update({"event": "progress", "stage": "pass2", "done": 0, "total": 10}) == 30
    assert p.update({"event": "progress", "stage": "pass2", "done": 5, "total": 10}) == 65
    assert p.update({"event": "progress", "stage": "pass1", "done": 0, "total": 10}) == 65
    assert p.update({"event": "finished"}) == 100

    only2 = client.OverallProgress()  # statistics cached, resumed, or fused into pass 2
    assert only2.update({"event": "progress", "stage": "pass2", "done": 1, "total": 4}) == 25
    assert only2.update({"event": "progress", "stage": "pass2", "done": 9, "total": 4}) == 100
    odd = client.OverallProgress()
    assert odd.update({"event": "progress", "stage": "pass2", "done": "x", "total": 4}) == 0
    assert odd.update({"event": "progress", "stage": "pass3", "done": 1, "total": 1}) == 0
    assert odd.update({"event": "progress", "stage": "pass2", "done": 0, "total": 0}) == 100


def test_progress_text_and_its_throttle():
    event = {"event": "progress", "stage": "pass2", "done": 45, "total": 100, "rate": 1.23e6}
    assert client.progress_text(event) == "pass 2 of 2: classify: 45 %, 1.2 Mpx/s"
    now = [0.0]
    text = client.ProgressText(every=2.0, clock=lambda: now[0])
    assert text({**event, "stage": "pass1"}).startswith("pass 1 of 2")
    assert text(event).startswith("pass 2 of 2")  # a new stage: at once
    now[0] = 1.0
    assert text(event) is None
    now[0] = 3.5
    assert text(event) is not None
    assert text({"event": "finished"}) is None
    done = {"event": "progress", "stage": "pass1", "total": 800000, "elapsed": 0.5, "rate": 1.6e6}
    assert client.stage_summary(done) == "pass 1 of 2: statistics: 800,000 px in 0.5 s (1.6 Mpx/s)"


def test_line_kinds():
    assert client.line_kind("error: bad") == "error"
    assert client.line_kind("interrupted: stopped") == "interrupted"
    assert client.line_kind("WARNING: x") == "warning"
    assert client.line_kind("INFO: x") == "info"
    assert client.line_kind("Traceback (most recent call last):") == "other"


def test_usage_filter_hides_a_rejected_progress_flag_only():
    shown: list[str] = []
    f = client.UsageFilter(lambda kind, line: shown.append(line))
    f("other", "usage: python -m windowed_classify [-h]")
    f("other", "      {run,demo} ...")
    f("other", "python -m windowed_classify: error: unrecognized arguments: --progress json")
    assert shown == []
    f("info", "INFO: started")
    assert shown[-1] == "INFO: started" and len(shown) == 4  # held lines come out in order
    f("other", "usage: shown now")
    assert shown[-1] == "usage: shown now"


# ------------------------------------------------------------------------------ errors


def test_failure_messages():
    stderr = ["INFO: x", "error: config key 'model.path': file not found: /m.pkl"]
    assert client.failure_message("run", 2, stderr) == (
        "config key 'model.path': file not found: /m.pkl"
    )
    report = ["grid: ...", "NOT READY:", "  - output exists", "", "  - feature 'a' MISSING"]
    assert client.failure_message("check", 2, [], report) == (
        "NOT READY:\n  - output exists\n  - feature 'a' MISSING"
    )
    argparse_lines = ["usage: ...", "python -m windowed_classify run: error: bad --workers"]
    assert client.failure_message("run", 2, argparse_lines) == "bad --workers"
    missing = ["/v/bin/python: No module named windowed_classify"]
    assert "not installed in /v/bin/python" in client.failure_message(
        "run", 1, missing, (), "/v/bin/python"
    )
    trace = ["Traceback (most recent call last):", '  File "x"', "MemoryError: boom"]
    assert client.failure_message("run", 1, trace) == "MemoryError: boom"
    assert client.failure_message("run", 130, ["interrupted: stop"]) == "interrupted: stop"
    assert client.failure_message("run", 9, []) == "windowed_classify run exited with code 9"
    assert client.progress_unsupported(
        2, argparse_lines[:1] + ["prog: error: unrecognized arguments: --progress json"]
    )
    assert not client.progress_unsupported(2, ["error: config key 'x'"])


def test_explanations_name_the_dialogs_options():
    assert "untick 'Continue an interrupted run'" in client.explain(
        "cannot resume: since the interrupted run, the model changed.", resume=True
    )
    assert "tick 'Replace existing outputs'" in client.explain(
        "output /o.tif already exists; set output.overwrite: true or pass --overwrite"
    )
    assert client.explain("other") == "other"
    hint = client.resume_hint("/v/bin/python", "/d/my run/p.config.yaml")
    assert '/v/bin/python -m windowed_classify run "/d/my run/p.config.yaml" --resume' in hint


# ------------------------------------------------------------------------------ driver


def _fake(*args: str) -> list[str]:
    return [sys.executable, str(FAKE), *args]


def test_run_forwards_progress_logs_and_the_finished_event(tmp_path):
    out = str(tmp_path / "p.tif")
    percents: list[float] = []
    logs: list[tuple[str, str]] = []
    result = client.run_tool(
        _fake("ok", out),
        env=client.tool_environment({"PATH": "/usr/bin:/bin"}),
        on_progress=lambda pct, event: percents.append(pct),
        on_log=lambda kind, line: logs.append((kind, line)),
    )
    assert result.returncode == 0 and not result.canceled
    assert percents == [0, 15, 30, 30, 58, 100, 100]
    assert result.output_path() == out and result.report_path() == out + ".report.json"
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
    client.run_tool(
        _fake("pass2only", str(tmp_path / "p.tif")), on_progress=lambda p, e: percents.append(p)
    )
    assert percents == [0, 40, 100, 100]


def test_run_reports_the_one_line_error():
    result = client.run_tool(_fake("error"))
    assert result.returncode == 2
    assert client.failure_message("run", result.returncode, result.stderr) == (
        "config key 'nodata.threshold': expected an integer >= 0, got -1"
    )


def test_run_of_an_older_tool_is_recognised_and_its_bars_give_progress():
    old = client.run_tool(_fake("old"))
    assert client.progress_unsupported(old.returncode, old.stderr)
    percents: list[float] = []
    bars = client.run_tool(_fake("bars"), on_progress=lambda p, e: percents.append(p))
    assert percents == [0, 50, 100] and bars.output_path() == "/data/out.tif"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is POSIX")
def test_cancel_sends_sigterm_and_the_tool_keeps_its_journal(tmp_path):
    journal = tmp_path / ".p.partial.journal.json"
    seen: list[dict] = []
    result = client.run_tool(
        _fake("slow", str(journal)),
        is_canceled=lambda: any(e.get("stage") == "pass2" for e in seen),
        on_progress=lambda p, e: seen.append(e),
        poll_seconds=0.05,
    )
    assert result.canceled and not result.killed
    assert result.returncode == client.EXIT_INTERRUPTED
    assert journal.exists()
    assert any("--resume" in line for line in result.stderr)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is POSIX")
def test_a_tool_deaf_to_sigterm_is_killed_after_the_grace_period():
    started = time.monotonic()
    seen: list[dict] = []
    result = client.run_tool(
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
        client.run_tool([str(tmp_path / "nope" / "python"), "-m", "x"])
    with pytest.raises(client.ClientError, match="cannot start"):
        client.read_version([str(tmp_path / "nope" / "python")])


def test_the_tool_runs_outside_the_callers_folder(tmp_path, monkeypatch):
    # python -m would import a windowed_classify folder of the working directory first
    shadow = tmp_path / "windowed_classify"
    shadow.mkdir()
    (shadow / "__main__.py").write_text("print('shadowed')", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert "shadowed" not in client.read_version(client.version_command(sys.executable))
    assert client.neutral_cwd(sys.executable) == str(Path(sys.executable).parent)


def test_read_version_of_the_real_tool():
    import windowed_classify

    line = client.read_version(client.version_command(sys.executable))
    assert line.endswith(windowed_classify.__version__)


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


def test_grid_raster_of_a_config(tmp_path):
    cov = tmp_path / "cov" / "sub"
    cov.mkdir(parents=True)
    for name in ("b.tif", "a.TIF", ".a.partial.tif", "notes.txt"):
        (cov / name).write_text("", encoding="utf-8")
    (tmp_path / "cov" / "z.tif").write_text("", encoding="utf-8")
    assert client.first_raster(tmp_path / "cov", [".tif"]) == cov / "a.TIF"
    cfg_path = tmp_path / "c.yaml"
    assert client.rasters_of({"rasters": {"folder": "cov"}}, cfg_path) == cov / "a.TIF"
    assert (
        client.rasters_of({"rasters": {"files": {"k": "/vsis3/b/k.tif", "j": "j.tif"}}}, cfg_path)
        == "/vsis3/b/k.tif"
    )
    ref = {"rasters": {"folder": "cov", "reference": "ref.tif"}}
    assert client.rasters_of(ref, cfg_path) == tmp_path / "ref.tif"
    assert client.rasters_of({}, cfg_path) is None


def test_output_of_a_config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("output:\n  path: out/p.tif\n", encoding="utf-8")
    assert client.output_of_config(path) == str(tmp_path / "out" / "p.tif")
    path.write_text("output: [", encoding="utf-8")
    assert client.output_of_config(path) is None
    with pytest.raises(client.ClientError, match="cannot read the config"):
        client.read_yaml(path)
