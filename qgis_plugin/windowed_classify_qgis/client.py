"""The plugin's thin client of the windowed_classify command line, free of QGIS imports.

Everything here is plain Python (standard library only) so that it is unit-tested without
QGIS: which interpreter to use, the config written from the algorithm's parameters (as YAML,
without PyYAML), the command lines, the ``--progress json`` protocol and the overall
percentage, the one-line user errors, and the subprocess driver with its cancel path.
The tool itself is never imported: it lives in its own Python environment.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PYTHON = "WINDOWED_CLASSIFY_PYTHON"
MODULE = "windowed_classify"
EXIT_NOT_READY = 2  # check: the run would not start
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
# Share of the bar given to pass 1 (statistics) when it runs; pass 2 (predict) gets the rest.
PASS1_SHARE = 30.0
DEFAULT_EXTENSIONS = (".tif", ".tiff")
ARCGIS_FLOAT32_NODATA = -3.3999999521443642e38


class ClientError(Exception):
    """A problem the user can fix (bad parameter, no interpreter): one clear message."""


# ------------------------------------------------------------------------------ interpreter


def python_in(path: str | os.PathLike) -> Path:
    """The interpreter for a setting: a python executable, or a venv folder holding one."""
    p = Path(os.path.expanduser(str(path).strip()))
    if p.is_dir():
        for candidate in (p / "bin" / "python", p / "Scripts" / "python.exe", p / "python.exe"):
            if candidate.is_file():
                return candidate
        raise ClientError(
            f"{p} is a folder without bin/python (or Scripts\\python.exe): give the python "
            "executable of the environment where windowed_classify is installed"
        )
    return p


def resolve_interpreter(setting: str | None, environ: Mapping[str, str]) -> tuple[Path, str]:
    """(python, where it came from). The environment variable wins over the Processing
    setting so that one headless invocation (qgis_process, CI) can choose without touching
    the user's profile."""
    from_env = (environ.get(ENV_PYTHON) or "").strip()
    if from_env:
        source = f"environment variable {ENV_PYTHON}"
        python = python_in(from_env)
    elif setting and setting.strip():
        source = "Processing setting 'Python interpreter of windowed_classify'"
        python = python_in(setting)
    else:
        raise ClientError(
            "no Python interpreter for windowed_classify is set: in QGIS, Settings > Options > "
            "Processing > Providers > Windowed classify > 'Python interpreter of "
            f"windowed_classify' (e.g. /path/to/venv/bin/python); headless, set {ENV_PYTHON}"
        )
    if not python.is_file():
        raise ClientError(f"the Python interpreter {python} (from the {source}) does not exist")
    return python, source


# Variables a QGIS installation sets for its own Python and GDAL/PROJ (OSGeo4W, the macOS
# bundle, Flatpak): in the tool's venv they would load QGIS's modules or point rasterio's own
# GDAL/PROJ at data files of another version.
_QGIS_ONLY_VARIABLES = (
    "PYTHONHOME",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONEXECUTABLE",
    "GDAL_DATA",
    "GDAL_DRIVER_PATH",
    "PROJ_LIB",
    "PROJ_DATA",
    "QT_PLUGIN_PATH",
)


def tool_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The tool's environment: QGIS's minus its Python/GDAL/PROJ paths, with UTF-8 and
    unbuffered output so that progress lines arrive as they are printed."""
    env = {k: v for k, v in environ.items() if k not in _QGIS_ONLY_VARIABLES}
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONUNBUFFERED"] = "1"
    return env


# ------------------------------------------------------------------------------ parameters


def parse_numbers(text: str | None) -> list[int | float]:
    """Nodata values as typed in the dialog: separated by commas, semicolons or spaces."""
    values: list[int | float] = []
    for token in re.split(r"[,;\s]+", (text or "").strip()):
        if not token:
            continue
        try:
            values.append(int(token))
        except ValueError:
            try:
                values.append(float(token))
            except ValueError:
                raise ClientError(f"nodata value {token!r} is not a number") from None
    return values


def parse_extensions(text: str | None) -> list[str]:
    """'.tif, tiff;.vrt' -> ['.tif', '.tiff', '.vrt']; empty -> the tool's defaults."""
    out = []
    for token in re.split(r"[,;\s]+", (text or "").strip()):
        if token:
            ext = token if token.startswith(".") else "." + token
            if ext.lower() not in (e.lower() for e in out):
                out.append(ext)
    return out or list(DEFAULT_EXTENSIONS)


def layer_files(layers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Project layers -> ``rasters.files``: feature name (the layer's name) -> its file.

    The layer name is the feature name because it is what the user sees and can rename in
    the Layers panel to match the model (by default QGIS names a layer after its file)."""
    files: dict[str, str] = {}
    for name, path in layers:
        if name in files:
            raise ClientError(
                f"two layers are named {name!r} ({files[name]} and {path}); a layer's name is "
                "its feature name: rename one in the Layers panel"
            )
        files[name] = path
    if not files:
        raise ClientError("no raster layers were given")
    return files


# GDAL sources that are not file paths: /vsi... paths, URLs, DRIVER:... (NETCDF:"f.nc":var);
# a one-letter prefix is a Windows drive.
_NOT_A_PATH = re.compile(r"^(/vsi|[A-Za-z][A-Za-z0-9+.-]*://|[A-Za-z][A-Za-z0-9_]+:)")


def _absolute(path: str | os.PathLike) -> str:
    text = str(path)
    if _NOT_A_PATH.match(text):  # given to GDAL as it is
        return text
    return str(Path(os.path.expanduser(text)).absolute())


def build_config(
    *,
    model: str,
    output: str,
    folder: str | None = None,
    files: Mapping[str, str] | None = None,
    extensions: Sequence[str] | None = None,
    scoring_file: str | None = None,
    nodata_values: Sequence[float] | None = None,
    use_file_nodata: bool = True,
    threshold: int = 0,
    overwrite: bool = False,
    probabilities: str | None = None,
    confidence: str | None = None,
    cog: bool = False,
    preview: str | None = None,
    memory_mb: int | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """The tool's config (README "Config reference") from the dialog's values. Paths are
    absolute so that the YAML can be run from anywhere."""
    if bool(folder) == bool(files):
        raise ClientError(
            "give either a folder of covariate rasters or raster layers from the project"
            + (" (not both)" if folder else "")
        )
    if not model:
        raise ClientError("no model file was given")
    if not output:
        raise ClientError("no output raster was given")
    rasters: dict[str, Any] = {}
    if folder:
        rasters["folder"] = _absolute(folder)
        rasters["extensions"] = list(extensions or DEFAULT_EXTENSIONS)
    else:
        rasters["files"] = {name: _absolute(path) for name, path in (files or {}).items()}
    out: dict[str, Any] = {"path": _absolute(output), "overwrite": bool(overwrite)}
    for key, value in (
        ("probabilities", probabilities),
        ("confidence", confidence),
        ("preview", preview),
    ):
        if value:
            out[key] = _absolute(value)
    if cog:
        out["cog"] = True
    processing: dict[str, Any] = {}
    if memory_mb:
        processing["memory_mb"] = int(memory_mb)
    if workers:  # 0 or None: all cores (the tool's default)
        processing["workers"] = int(workers)
    config: dict[str, Any] = {
        "rasters": rasters,
        "nodata": {
            "values": list(
                [ARCGIS_FLOAT32_NODATA] if nodata_values is None else list(nodata_values)
            ),
            "use_file_nodata": bool(use_file_nodata),
            "threshold": int(threshold),
        },
        "model": {"path": _absolute(model)},
        "output": out,
    }
    if scoring_file:
        config["model"]["scoring_file"] = _absolute(scoring_file)
    if processing:
        config["processing"] = processing
    return config


def config_path_for(output: str | os.PathLike) -> Path:
    """prediction.tif -> prediction.config.yaml, beside it (to repeat the run in a terminal)."""
    p = Path(output)
    return p.with_name(p.stem + ".config.yaml")


def style_path_for(output: str | os.PathLike) -> Path:
    """The QGIS style the tool writes beside the classes: prediction.tif -> prediction.qml."""
    p = Path(output)
    return p.with_name(p.stem + ".qml")


def report_path_for(output: str | os.PathLike) -> Path:
    p = Path(output)
    return p.with_name(p.stem + ".report.json")


def journal_path_for(output: str | os.PathLike) -> Path:
    """The resume journal of an interrupted run (README "Resume after a crash")."""
    p = Path(output)
    return p.with_name(f".{p.stem}.partial.journal.json")


# ------------------------------------------------------------------------------ YAML

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _yaml_float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    if e and "." not in mantissa:  # YAML 1.1 (PyYAML) reads '1e+30' as text: needs '1.0e+30'
        text = f"{mantissa}.0e{exponent}"
    return text


def _yaml_string(value: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar; keep non-ASCII readable unless it
    # holds characters (line separators, controls) YAML could take for structure.
    text = json.dumps(value, ensure_ascii=False)
    return text if text.isprintable() else json.dumps(value)


def yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _yaml_float(value)
    if isinstance(value, str | os.PathLike):
        return _yaml_string(os.fspath(value))
    raise TypeError(f"cannot write {type(value).__name__} to YAML")


def _yaml_key(key: str) -> str:
    return key if _PLAIN_KEY.match(key) and key.lower() not in _YAML_WORDS else _yaml_string(key)


_YAML_WORDS = {"null", "true", "false", "yes", "no", "on", "off", "y", "n"}


def to_yaml(data: Mapping[str, Any], indent: int = 0) -> str:
    """Block-style YAML of nested mappings, lists and scalars (what a config holds)."""
    lines = []
    pad = " " * indent
    for key, value in data.items():
        if isinstance(value, Mapping):
            if value:
                lines.append(f"{pad}{_yaml_key(str(key))}:")
                lines.append(to_yaml(value, indent + 2).rstrip("\n"))
            else:
                lines.append(f"{pad}{_yaml_key(str(key))}: {{}}")
        elif isinstance(value, list | tuple):
            items = ", ".join(yaml_scalar(v) for v in value)
            lines.append(f"{pad}{_yaml_key(str(key))}: [{items}]")
        else:
            lines.append(f"{pad}{_yaml_key(str(key))}: {yaml_scalar(value)}")
    return "\n".join(lines) + "\n"


def config_text(
    config: Mapping[str, Any],
    python: str | os.PathLike | None = None,
    path: str | os.PathLike | None = None,
) -> str:
    """The YAML file: a header saying how to repeat the run, then the config."""
    where = _quote_arg(os.fspath(path)) if path is not None else "THIS.config.yaml"
    run = f"{_quote_arg(os.fspath(python)) if python else 'python'} -m {MODULE} run {where}"
    header = (
        "# windowed_classify config written by the QGIS plugin 'Windowed classify'.\n"
        "# Repeat this run from a terminal (add --resume to continue an interrupted one):\n"
        f"#   {run}\n"
        "# Every key: configs/example.yaml of windowed_classify.\n"
    )
    return header + to_yaml(config)


def write_config(
    path: str | os.PathLike, config: Mapping[str, Any], python: str | os.PathLike | None = None
) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(config_text(config, python, p), encoding="utf-8")
    os.replace(tmp, p)  # never a half-written config beside the output
    return p


def _quote_arg(text: str) -> str:
    return text if re.fullmatch(r"[\w@%+=:,./\\-]+", text) else '"' + text + '"'


# ------------------------------------------------------------------------------ commands


def build_command(
    python: str | os.PathLike,
    command: str,
    config: str | os.PathLike,
    *,
    progress: bool = False,
    resume: bool = False,
    overwrite: bool = False,
    workers: int | None = None,
    points: str | os.PathLike | None = None,
    output: str | os.PathLike | None = None,
) -> list[str]:
    """argv for ``python -m windowed_classify COMMAND CONFIG ...`` (never through a shell)."""
    if command not in ("run", "check", "sample"):
        raise ValueError(f"unknown command {command!r}")
    argv = [os.fspath(python), "-m", MODULE, command, os.fspath(config)]
    if command == "sample":
        if points is None or output is None:
            raise ValueError("sample needs points and output")
        argv += [os.fspath(points), "-o", os.fspath(output)]
    if resume and command == "run":
        argv.append("--resume")
    if overwrite and command in ("run", "sample"):
        argv.append("--overwrite")
    if workers and command in ("run", "check"):
        argv += ["--workers", str(int(workers))]
    if progress:
        argv += ["--progress", "json"]
    return argv


def version_command(python: str | os.PathLike) -> list[str]:
    return [os.fspath(python), "-m", MODULE, "--version"]


def progress_unsupported(returncode: int, stderr: Sequence[str]) -> bool:
    """An older tool without ``--progress`` rejects it as an argparse usage error."""
    return returncode == EXIT_USER_ERROR and any(
        "unrecognized arguments" in line and "--progress" in line for line in stderr
    )


# ------------------------------------------------------------------------------ progress


def parse_event(line: str) -> dict[str, Any] | None:
    """A ``--progress json`` line (a JSON object with an "event"), else None."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("event"), str):
        return None
    return obj


# tqdm's bar, e.g. "pass 2: classify:  45%|####5     | 472k/1.05M [00:01<00:01, 412kpx/s]"
_TQDM = re.compile(r"^\s*pass ([12])\b[^|%]*?(\d{1,3})%\|")


def parse_bar(line: str) -> dict[str, Any] | None:
    """Progress from a tool that predates ``--progress json``: its tqdm bar lines."""
    m = _TQDM.match(line)
    if not m:
        return None
    return {
        "event": "progress",
        "stage": f"pass{m.group(1)}",
        "done": int(m.group(2)),
        "total": 100,
        "unit": "%",
        "bar": line.strip(),
    }


STAGE_NAMES = {"pass1": "pass 1 of 2: statistics", "pass2": "pass 2 of 2: classify"}


class OverallProgress:
    """Maps the tool's per-stage progress to one 0-100 bar: pass 1 takes 0-30 %, pass 2
    30-100 %; when pass 1 does not run (statistics cached, resumed, or fused into pass 2)
    pass 2 spans 0-100 %. The bar never moves backwards."""

    def __init__(self, pass1_share: float = PASS1_SHARE) -> None:
        self.pass1_share = pass1_share
        self.seen_pass1 = False
        self.percent = 0.0

    def update(self, event: Mapping[str, Any]) -> float:
        kind = event.get("event")
        if kind == "finished":
            self.percent = 100.0
            return self.percent
        if kind != "progress":
            return self.percent
        stage = event.get("stage")
        try:
            done, total = float(event.get("done", 0)), float(event.get("total", 0))
        except (TypeError, ValueError):
            return self.percent
        frac = 1.0 if total <= 0 else min(max(done / total, 0.0), 1.0)
        if stage == "pass1":
            self.seen_pass1 = True
            value = frac * self.pass1_share
        elif stage == "pass2":
            start = self.pass1_share if self.seen_pass1 else 0.0
            value = start + frac * (100.0 - start)
        else:
            return self.percent
        self.percent = max(self.percent, value)
        return self.percent


def _si(value: float) -> str:
    for factor, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.1f} {prefix}"
    return f"{value:.0f} "


def progress_text(event: Mapping[str, Any]) -> str:
    """A short status line for the progress bar: stage, percentage and rate."""
    stage = STAGE_NAMES.get(str(event.get("stage")), str(event.get("stage")))
    try:
        done, total = float(event.get("done", 0)), float(event.get("total", 0))
    except (TypeError, ValueError):
        return stage
    text = f"{stage}: {100.0 * done / total:.0f} %" if total > 0 else stage
    rate = event.get("rate")
    if isinstance(rate, int | float) and not isinstance(rate, bool) and rate > 0:
        text += f", {_si(float(rate))}{event.get('unit', 'px')}/s"
    return text


def stage_summary(event: Mapping[str, Any]) -> str:
    """One log line when a stage completes."""
    stage = STAGE_NAMES.get(str(event.get("stage")), str(event.get("stage")))
    if "bar" in event:
        return str(event["bar"])
    parts = [f"{stage}: {int(event.get('total', 0)):,} {event.get('unit', 'px')}"]
    elapsed = event.get("elapsed")
    if isinstance(elapsed, int | float) and not isinstance(elapsed, bool):
        parts.append(f"in {float(elapsed):.1f} s")
    rate = event.get("rate")
    if isinstance(rate, int | float) and not isinstance(rate, bool) and rate > 0:
        parts.append(f"({_si(float(rate))}{event.get('unit', 'px')}/s)")
    return " ".join(parts)


def line_kind(line: str) -> str:
    """What a stderr line of the tool is: error, interrupted, warning, info or other."""
    if line.startswith("error: "):
        return "error"
    if line.startswith("interrupted: "):
        return "interrupted"
    if line.startswith("WARNING: "):
        return "warning"
    if line.startswith(("INFO: ", "DEBUG: ")):
        return "info"
    if line.startswith(("ERROR: ", "CRITICAL: ")):
        return "error"
    return "other"


class ProgressText:
    """Throttles the status text: on a new stage, then at most every ``every`` seconds
    (qgis_process prints each one as a line)."""

    def __init__(self, every: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.every = every
        self.clock = clock
        self.stage: str | None = None
        self.last = -math.inf

    def __call__(self, event: Mapping[str, Any]) -> str | None:
        if event.get("event") != "progress":
            return None
        now = self.clock()
        stage = str(event.get("stage"))
        if stage == self.stage and now - self.last < self.every:
            return None
        self.stage, self.last = stage, now
        return progress_text(event)


class UsageFilter:
    """Holds back an argparse usage message while a first attempt with ``--progress json``
    may be rejected by an older tool, so the retry does not show the rejection."""

    def __init__(self, log: Callable[[str, str], None]) -> None:
        self.log = log
        self.held: list[tuple[str, str]] = []
        self.passing = False

    def __call__(self, kind: str, line: str) -> None:
        usage = line.startswith("usage: ") or (self.held and line[:1].isspace())
        rejected = "unrecognized arguments" in line and "--progress" in line
        if not self.passing and (usage or rejected):
            self.held.append((kind, line))
            return
        self.flush()
        self.passing = True
        self.log(kind, line)

    def flush(self) -> None:
        held, self.held = self.held, []
        for kind, line in held:
            self.log(kind, line)


# ------------------------------------------------------------------------------ errors


def failure_message(
    command: str,
    returncode: int,
    stderr: Sequence[str],
    stdout: Sequence[str] = (),
    python: str | os.PathLike | None = None,
) -> str:
    """The message of a failed run: the tool's one-line ``error: ...``, the NOT READY part of
    ``check``'s report, an argparse usage error, or the last line of a traceback."""
    errors = [line[len("error: ") :].strip() for line in stderr if line.startswith("error: ")]
    if errors:
        return errors[-1]
    text = "\n".join(stderr)
    if f"No module named {MODULE}" in text:
        return (
            f"windowed_classify is not installed in {python or 'the chosen interpreter'}: "
            "install it there (pip install -e /path/to/windowed_classify), or choose the "
            "interpreter of the environment where it is installed"
        )
    if command == "check" and returncode == EXIT_NOT_READY:
        for i, line in enumerate(stdout):
            if line.startswith("NOT READY"):
                return "\n".join(x for x in stdout[i:] if x.strip())
    for line in reversed(stderr):  # argparse: "prog: error: message"
        m = re.match(r"^\S.*?: error: (.+)$", line)
        if m:
            return m.group(1).strip()
    if returncode == EXIT_INTERRUPTED:
        stopped = [x for x in stderr if x.startswith("interrupted: ")]
        return stopped[-1] if stopped else "interrupted"
    lines = [x.strip() for x in stderr if x.strip() and parse_event(x) is None]
    if lines:
        return lines[-1]
    return f"windowed_classify {command} exited with code {returncode}"


def explain(message: str, resume: bool = False) -> str:
    """Adds what to do in QGIS where the tool's message speaks of command-line flags."""
    if message.startswith("cannot resume") and resume:
        return message + " (untick 'Continue an interrupted run' to start over)"
    if "--overwrite" in message or "output.overwrite" in message:
        return message + " (tick 'Replace existing outputs' to replace them)"
    return message


def resume_hint(python: str | os.PathLike, config: str | os.PathLike) -> str:
    return (
        "The finished part and its journal are kept. To continue, run the algorithm again with "
        "'Continue an interrupted run' ticked (the default), or in a terminal: "
        f"{_quote_arg(os.fspath(python))} -m {MODULE} run {_quote_arg(os.fspath(config))} "
        "--resume"
    )


# ------------------------------------------------------------------------------ running


@dataclass
class RunResult:
    returncode: int
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)  # log lines, without progress lines
    events: list[dict[str, Any]] = field(default_factory=list)
    canceled: bool = False
    killed: bool = False  # did not stop after SIGTERM within the grace period

    @property
    def finished(self) -> dict[str, Any] | None:
        for event in reversed(self.events):
            if event.get("event") == "finished":
                return event
        return None

    def output_path(self) -> str | None:
        """The classified raster: from the finished event, else run's 'classified:' line."""
        done = self.finished
        if done and isinstance(done.get("outputs"), Mapping):
            path = done["outputs"].get("classes")
            if path:
                return str(path)
        for line in reversed(self.stdout):
            if line.startswith("classified: "):
                return line[len("classified: ") :].strip()
        return None

    def report_path(self) -> str | None:
        done = self.finished
        return str(done["report"]) if done and done.get("report") else None


def neutral_cwd(python: str | os.PathLike) -> str | None:
    """The interpreter's own folder as the working directory: ``python -m`` puts the working
    directory first on sys.path, so a folder holding a copy of the package (a checkout) would
    shadow the installed tool. The tool resolves paths against the config, not the cwd."""
    folder = Path(python).parent
    return str(folder) if folder.is_dir() else None


Log = Callable[[str, str], None]  # (kind, line): stdout, info, warning, error, other, ...


def _pump(stream: Any, name: str, sink: queue.Queue) -> None:
    try:
        for line in stream:  # text mode, universal newlines: tqdm's '\r' ends a line too
            sink.put((name, line.rstrip("\r\n")))
    finally:
        sink.put((name, None))


def run_tool(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    is_canceled: Callable[[], bool] = lambda: False,
    on_progress: Callable[[float, dict[str, Any]], None] | None = None,
    on_log: Log | None = None,
    poll_seconds: float = 0.1,
    grace_seconds: float = 120.0,
) -> RunResult:
    """Runs the tool, forwarding progress and log lines as they come, and stops it on cancel.

    Cancel sends SIGTERM, which the tool treats as Ctrl-C: it finishes the window at hand,
    keeps the partial output and its journal, and exits 130 saying how to resume. A tool
    still running ``grace_seconds`` later is killed (its last checkpoint stays resumable).
    On Windows there is no SIGTERM: terminate() ends it at once, also after the last
    checkpoint."""
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=os.fspath(cwd) if cwd is not None else neutral_cwd(argv[0]),
            text=True,
            encoding="utf-8",
            errors="replace",
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),  # no console on Windows
        )
    except OSError as exc:
        raise ClientError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
    lines: queue.Queue = queue.Queue()
    readers = [
        threading.Thread(target=_pump, args=(proc.stdout, "stdout", lines), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, "stderr", lines), daemon=True),
    ]
    for reader in readers:
        reader.start()
    result = RunResult(returncode=-1)
    overall = OverallProgress()
    completed_stages: set[str] = set()
    open_streams = 2
    signalled_at: float | None = None

    def log(kind: str, line: str) -> None:
        if on_log is not None:
            on_log(kind, line)

    while open_streams or proc.poll() is None:
        if signalled_at is None and is_canceled():
            result.canceled = True
            signalled_at = time.monotonic()
            with contextlib.suppress(OSError):
                if sys.platform == "win32":
                    proc.terminate()
                else:
                    proc.send_signal(signal.SIGTERM)
        if (
            signalled_at is not None
            and not result.killed
            and time.monotonic() - signalled_at > grace_seconds
        ):
            result.killed = True
            with contextlib.suppress(OSError):
                proc.kill()
        try:
            stream, line = lines.get(timeout=poll_seconds)
        except queue.Empty:
            continue
        if line is None:
            open_streams -= 1
            continue
        if stream == "stdout":
            result.stdout.append(line)
            log("stdout", line)
            continue
        event = parse_event(line) or parse_bar(line)
        if event is None:
            result.stderr.append(line)
            log(line_kind(line), line)
            continue
        if event.get("event") != "progress":  # finished (and any later kinds): kept whole
            result.events.append(event)
        percent = overall.update(event)
        if on_progress is not None:
            on_progress(percent, event)
        if event.get("event") == "progress":
            stage = str(event.get("stage"))
            try:
                complete = float(event.get("done", 0)) >= float(event.get("total", 0)) > 0
            except (TypeError, ValueError):
                complete = False
            if complete and stage not in completed_stages:
                completed_stages.add(stage)
                log("info", stage_summary(event))
        elif event.get("event") != "finished":
            log("other", line)
    result.returncode = proc.wait()
    for reader in readers:
        reader.join(timeout=1)
    for stream in (proc.stdout, proc.stderr):
        with contextlib.suppress(OSError):
            stream.close()
    return result


def read_version(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """``python -m windowed_classify --version`` -> its output line, or a ClientError."""
    try:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=dict(env) if env is not None else None,
            cwd=neutral_cwd(argv[0]),
            timeout=120,
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
    except OSError as exc:
        raise ClientError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
    except subprocess.TimeoutExpired:
        raise ClientError(f"{argv[0]} did not answer --version within 120 s") from None
    text = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        raise ClientError(
            failure_message("version", done.returncode, done.stderr.splitlines(), (), argv[0])
        )
    return text.splitlines()[-1] if text else "(no version printed)"


# ------------------------------------------------------------------------------ sampling


def first_raster(folder: str | os.PathLike, extensions: Sequence[str]) -> Path | None:
    """The first layer the tool's discovery finds (recursive, sorted by relative path): its
    CRS is the grid's, into which the points are reprojected."""
    base = Path(folder)
    ends = tuple(e.lower() for e in extensions)
    found = sorted(
        p.relative_to(base)
        for p in base.rglob("*")
        if p.is_file() and p.name.lower().endswith(ends) and ".partial" not in p.name
    )
    return base / found[0] if found else None


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """A config YAML parsed with PyYAML, which QGIS's Processing plugin itself depends on."""
    try:
        import yaml
    except ImportError:
        raise ClientError(
            "reading a config YAML needs PyYAML in QGIS's Python; give the folder or layers instead"
        ) from None
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise ClientError(f"cannot read the config {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ClientError(f"the config {path} is not a mapping of sections")
    return data


def output_of_config(path: str | os.PathLike) -> str | None:
    """output.path of a config (relative to its folder), or None when it cannot be read here
    (the tool will say what is wrong with it)."""
    try:
        section = read_yaml(path).get("output")
    except ClientError:
        return None
    if not isinstance(section, Mapping) or not isinstance(section.get("path"), str):
        return None
    out = Path(os.path.expanduser(section["path"]))
    return str(out if out.is_absolute() else Path(path).parent / out)


def rasters_of(config: Mapping[str, Any], config_path: str | os.PathLike) -> Path | str | None:
    """The raster whose CRS is the grid's, from a parsed config: rasters.reference, the first
    of rasters.files, or the first file under rasters.folder (relative to the YAML)."""
    base = Path(config_path).parent
    section = config.get("rasters") or {}

    def resolve(p: str) -> Path | str:
        if p.startswith("/vsi") or "://" in p:
            return p
        path = Path(os.path.expanduser(p))
        return path if path.is_absolute() else base / path

    if section.get("reference"):
        return resolve(str(section["reference"]))
    files = section.get("files")
    if isinstance(files, Mapping) and files:
        return resolve(str(next(iter(files.values()))))
    if section.get("folder"):
        exts = section.get("extensions") or list(DEFAULT_EXTENSIONS)
        return first_raster(resolve(str(section["folder"])), [str(e) for e in exts])
    return None


ROW_COLUMN = "_qgis_row"


def write_points_csv(
    path: str | os.PathLike,
    fields: Sequence[str],
    rows: Iterable[tuple[int, float, float, Sequence[Any]]],
) -> list[str]:
    """The points for ``sample``: a row number (to join the values back onto the features),
    x and y in the rasters' CRS, and the attributes as text. Returns the attributes left out
    because their names are taken by those columns."""
    taken = {ROW_COLUMN, "x", "y"}
    keep = [i for i, name in enumerate(fields) if name not in taken]
    skipped = [name for name in fields if name in taken]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([ROW_COLUMN, *(fields[i] for i in keep), "x", "y"])
        for row, x, y, values in rows:
            writer.writerow(
                [row, *(_text(values[i]) for i in keep), repr(float(x)), repr(float(y))]
            )
    return skipped


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    iso = getattr(value, "isoformat", None)
    return iso() if callable(iso) else str(value)


def read_sample_csv(
    path: str | os.PathLike, points_columns: Sequence[str]
) -> tuple[list[str], dict[int, list[float | None]]]:
    """The tool's sample CSV -> (layer columns, row -> values); empty cells (nodata, outside
    the grid) are None. Layer columns are those after the points file's own columns."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader)
        own = set(points_columns)
        layer_idx = [i for i, name in enumerate(header) if name not in own]
        row_idx = header.index(ROW_COLUMN)
        values: dict[int, list[float | None]] = {}
        for record in reader:
            values[int(record[row_idx])] = [
                float(record[i]) if record[i].strip() else None for i in layer_idx
            ]
    return [header[i] for i in layer_idx], values
