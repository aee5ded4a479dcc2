"""The plugin's client of the windowed_classify command line, free of QGIS imports.

Plain Python (the standard library, and PyYAML, which QGIS's Processing imports itself), so
that it is unit-tested without QGIS: the interpreter and the tool's version floor, the config
the dialog describes, the command lines, and what the tool answers (``check --json``, its
``error:`` lines). Defaults, discovery, the grid, path rules and exit codes are the tool's:
a key the dialog leaves empty is not written, and the plugin asks ``check``. Running the
tool is ``runner``'s job.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

ENV_PYTHON = "WINDOWED_CLASSIFY_PYTHON"
MODULE = "windowed_classify"
MIN_TOOL_VERSION = "0.2.0"  # check --json, design, assess and --progress json everywhere


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


def neutral_cwd(python: str | os.PathLike) -> str | None:
    """The interpreter's own folder as the working directory: ``python -m`` puts the working
    directory first on sys.path, so a folder holding a copy of the package (a checkout) would
    shadow the installed tool. The plugin gives the tool absolute paths only."""
    folder = Path(python).parent
    return str(folder) if folder.is_dir() else None


def read_version(python: str | os.PathLike, env: Mapping[str, str] | None = None) -> str:
    """The line ``python -m windowed_classify --version`` prints, or a ClientError."""
    argv = tool_command(python, "--version", progress=False)
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=dict(env) if env is not None else None,
            cwd=neutral_cwd(python),
            timeout=120,
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
    except OSError as exc:
        raise ClientError(f"cannot start {python}: {exc.strerror or exc}") from None
    except subprocess.TimeoutExpired:
        raise ClientError(f"{python} did not answer --version within 120 s") from None
    if done.returncode != 0:
        raise ClientError(
            failure_message("--version", done.stderr.splitlines(), python, done.returncode)
        )
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[-1] if lines else "(no version printed)"


def version_tuple(text: str) -> tuple[int, ...] | None:
    """'python -m windowed_classify 0.2.0' -> (0, 2, 0); None without a version number."""
    words = text.split()
    m = re.match(r"\d+(\.\d+)*", words[-1]) if words else None
    return tuple(int(x) for x in m.group(0).split(".")) if m else None


def require_version(line: str, python: str | os.PathLike, floor: str = MIN_TOOL_VERSION) -> str:
    """The version line, when it says ``floor`` or later; else what to do about it."""
    found, wanted = version_tuple(line), version_tuple(floor)
    if found is None or wanted is None or found < wanted:
        raise ClientError(
            f"{python} runs {line.strip() or 'an unknown windowed_classify'}; this plugin needs "
            f"windowed_classify {floor} or later: update it in that environment"
        )
    return line


def tool_version(python: str | os.PathLike, env: Mapping[str, str] | None = None) -> str:
    """The tool's version line, checked against the plugin's floor."""
    return require_version(read_version(python, env), python)


# ------------------------------------------------------------------------------ the dialog


def parse_numbers(text: str | None) -> list[int | float] | None:
    """Nodata values as typed: separated by commas, semicolons or spaces. Empty: None (the
    tool's default); 'none': no value (NaN and infinities only)."""
    text = (text or "").strip()
    if not text:
        return None
    if text.lower() == "none":
        return []
    values: list[int | float] = []
    for token in re.split(r"[,;\s]+", text):
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


def parse_extensions(text: str | None) -> list[str] | None:
    """'.tif, tiff;.vrt' -> ['.tif', '.tiff', '.vrt']; empty: None (the tool's default)."""
    out: list[str] = []
    for token in re.split(r"[,;\s]+", (text or "").strip()):
        ext = token if token.startswith(".") else "." + token
        if token and ext.lower() not in (e.lower() for e in out):
            out.append(ext)
    return out or None


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
    return files


# GDAL sources that are not file paths: /vsi... paths, URLs, DRIVER:... (NETCDF:"f.nc":var);
# a one-letter prefix is a Windows drive.
_NOT_A_PATH = re.compile(r"^(/vsi|[A-Za-z][A-Za-z0-9+.-]*://|[A-Za-z][A-Za-z0-9_]+:)")


def absolute(path: str | os.PathLike) -> str:
    """A path made absolute (the config is written away from the paths' own folder); GDAL
    sources that are not paths are given as they are."""
    text = os.fspath(path)
    if _NOT_A_PATH.match(text):
        return text
    return str(Path(os.path.expanduser(text)).absolute())


def build_config(
    *,
    folder: str | None = None,
    files: Mapping[str, str] | None = None,
    extensions: Sequence[str] | None = None,
    nodata_values: Sequence[float] | None = None,
    use_file_nodata: bool | None = None,
    threshold: int | None = None,
    model: str | None = None,
    scoring_file: str | None = None,
    output: str | None = None,
    overwrite: bool | None = None,
    probabilities: str | None = None,
    confidence: str | None = None,
    cog: bool | None = None,
    preview: str | None = None,
    memory_mb: int | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """The config the dialog describes, as a plain mapping. A value left empty (None, or an
    empty path) is not written: the tool fills in its default and judges what is missing.
    Paths are made absolute."""

    def path(value: str | None) -> str | None:
        return absolute(value) if value else None

    sections = {
        "rasters": {
            "folder": path(folder),
            "files": {k: absolute(v) for k, v in files.items()} if files else None,
            "extensions": list(extensions) if extensions is not None else None,
        },
        "nodata": {
            "values": list(nodata_values) if nodata_values is not None else None,
            "use_file_nodata": use_file_nodata,
            "threshold": threshold,
        },
        "model": {"path": path(model), "scoring_file": path(scoring_file)},
        "output": {
            "path": path(output),
            "overwrite": overwrite,
            "probabilities": path(probabilities),
            "confidence": path(confidence),
            "cog": cog,
            "preview": path(preview),
        },
        "processing": {"memory_mb": memory_mb, "workers": workers},
    }
    config: dict[str, Any] = {}
    for name, keys in sections.items():
        given = {k: v for k, v in keys.items() if v is not None}
        if given:
            config[name] = given
    return config


def config_path_for(output: str | os.PathLike) -> Path:
    """Where the plugin keeps the config of a run: prediction.tif -> prediction.config.yaml,
    beside the output, to repeat the run in a terminal."""
    p = Path(output)
    return p.with_name(p.stem + ".config.yaml")


def config_text(
    config: Mapping[str, Any],
    python: str | os.PathLike | None = None,
    path: str | os.PathLike | None = None,
) -> str:
    """The YAML file: a header saying how to repeat the run, then the config."""
    where = quote_arg(os.fspath(path)) if path is not None else "THIS.config.yaml"
    run = f"{quote_arg(os.fspath(python)) if python else 'python'} -m {MODULE} run {where}"
    header = (
        "# windowed_classify config written by the QGIS plugin 'Windowed classify'.\n"
        "# Repeat this run from a terminal (add --resume to continue an interrupted one):\n"
        f"#   {run}\n"
        f"# Keys not written take the tool's defaults: python -m {MODULE} example-config\n"
    )
    body = yaml.safe_dump(dict(config), sort_keys=False, allow_unicode=True)
    return header + body


def write_config(
    path: str | os.PathLike, config: Mapping[str, Any], python: str | os.PathLike | None = None
) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(config_text(config, python, p), encoding="utf-8")
    os.replace(tmp, p)  # never a half-written config beside the output
    return p


def quote_arg(text: str) -> str:
    """An argument as a user would type it in a terminal (for messages only)."""
    return text if re.fullmatch(r"[\w@%+=:,./\\-]+", text) else '"' + text + '"'


# ------------------------------------------------------------------------------ commands


def tool_command(
    python: str | os.PathLike,
    command: str,
    *arguments: str | os.PathLike,
    progress: bool = True,
    **options: Any,
) -> list[str]:
    """argv for ``python -m windowed_classify COMMAND ARGUMENTS --OPTION VALUE ...`` (never
    through a shell). An option that is None or False is left out, True is a flag; names
    are the tool's with '_' for '-' (target_se -> --target-se)."""
    argv = [os.fspath(python), "-m", MODULE, command, *map(os.fspath, arguments)]
    for name, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        argv += [flag] if value is True else [flag, _argument(value)]
    if progress:
        argv += ["--progress", "json"]
    return argv


def _argument(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


# ------------------------------------------------------------------------------ errors


def failure_message(
    command: str,
    stderr: Sequence[str],
    python: str | os.PathLike | None = None,
    returncode: int | None = None,
) -> str:
    """The message of a failed command: the tool's one-line ``error: ...``, an argparse
    usage error, the ``interrupted:`` line, or the last line of a traceback."""
    errors = [line[len("error: ") :].strip() for line in stderr if line.startswith("error: ")]
    if errors:
        return errors[-1]
    if f"No module named {MODULE}" in "\n".join(stderr):
        return (
            f"windowed_classify is not installed in {python or 'the chosen interpreter'}: "
            "install it there (pip install -e /path/to/windowed_classify), or choose the "
            "interpreter of the environment where it is installed"
        )
    for line in reversed(stderr):
        m = re.match(r"^\S.*?: error: (.+)$", line)  # argparse: "prog: error: message"
        if m:
            return m.group(1).strip()
        if line.startswith("interrupted: "):
            return line
    lines = [x.strip() for x in stderr if x.strip() and not x.startswith("{")]
    if lines:
        return lines[-1]
    return f"windowed_classify {command} exited with code {returncode}"


def explain(message: str, resume: bool = False, fields: Mapping[str, str] | None = None) -> str:
    """Adds what to do in QGIS where the tool's message speaks of command-line flags;
    ``fields``: flag -> the dialog's field for it."""
    if message.startswith("cannot resume") and resume:
        return message + " (untick 'Continue an interrupted run' to start over)"
    if "--overwrite" in message or "output.overwrite" in message:
        return message + " (tick 'Replace existing outputs' to replace them)"
    named = [
        f"{flag} is '{label}'"
        for flag, label in (fields or {}).items()
        if re.search(re.escape(flag) + r"(?![\w-])", message)
    ]
    return message + f" (in the dialog, {'; '.join(named)})" if named else message


def resume_hint(python: str | os.PathLike, config: str | os.PathLike) -> str:
    return (
        "The finished part and its journal are kept. To continue, run the algorithm again with "
        "'Continue an interrupted run' ticked (the default), or in a terminal: "
        f"{quote_arg(os.fspath(python))} -m {MODULE} run {quote_arg(os.fspath(config))} "
        "--resume"
    )


# ------------------------------------------------------------------------------ check


def check_document(stdout: Sequence[str]) -> dict[str, Any] | None:
    """The document ``check --json`` prints, or None (a malformed config: an error line)."""
    try:
        doc = json.loads("\n".join(stdout))
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and "ok" in doc else None


def check_problems(doc: Mapping[str, Any]) -> str:
    """Every reason the run would not start, as the tool words them."""
    problems = [str(p) for p in doc.get("problems") or []]
    if len(problems) == 1:
        return f"NOT READY: {problems[0]}"
    return "\n".join(["NOT READY:", *(f"  - {p}" for p in problems)])


def check_summary(doc: Mapping[str, Any]) -> list[str]:
    """A readable summary of ``check --json``: grid, layers, model, classes, outputs and the
    estimate, then the verdict (warnings and problems are given apart)."""
    lines: list[str] = []
    grid = doc.get("grid")
    if grid:
        lines.append(
            f"grid: {grid['width']} x {grid['height']} pixels, {grid.get('crs') or 'no CRS'}"
            f" ({grid.get('chosen_as')})"
        )
    layers = doc.get("layers") or []
    lines.append(f"layers: {len(layers)} found")
    for layer in layers:
        band = f", band {layer['band']}" if layer.get("band") not in (None, 1) else ""
        lines.append(f"  {layer['name']}: {layer['status']} ({layer['file']}{band})")
    model = doc.get("model")
    if model:
        features = model.get("features") or []
        lines.append(
            f"model: {model.get('path')}: {model.get('task')} ({model.get('task_source')}); "
            f"{len(features)} feature(s) from {model.get('features_source')}"
        )
        if model.get("missing_features"):
            lines.append("  missing features: " + ", ".join(model["missing_features"]))
        classes = model.get("classes")
        if classes:
            lines.append("classes: " + ", ".join(f"{c['code']} {c['label']}" for c in classes))
    for out in doc.get("outputs") or []:
        state = "" if out.get("supported", True) else f": NOT SUPPORTED, {out.get('reason')}"
        lines.append(
            f"output {out['key']}: {out['path']} ({out['what']}, {out['bands']} band(s) "
            f"{out['dtype']}, nodata {out['nodata']}){state}"
        )
    est = doc.get("estimate")
    if est:
        lines.append(
            f"estimate: {est.get('windows')} window(s), {est.get('workers')} worker(s), "
            f"peak memory about {est.get('peak_mb')} MB"
        )
    problems = doc.get("problems") or []
    lines.append(
        "OK: the run would start." if doc.get("ok") else f"NOT READY: {len(problems)} problem(s)"
    )
    return lines


# ------------------------------------------------------------------------------ sampling

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
