"""The plugin in a real QGIS (Debian's qgis + python3-qgis, 3.22), headless. Run by .ci/qgis.sh:

    /usr/bin/python3 tests/qgis/qgis_integration.py --venv-python .venv/bin/python

Run with the system python3 (QGIS's Python bindings are built for it); the tool itself runs in
the venv given (WINDOWED_CLASSIFY_PYTHON), and so do the data generation and the pixel
comparisons (tests/qgis/stack_tools.py: numpy, rasterio, scikit-learn). Each check prints
PASS or FAIL with its time, then one closing line 'N passed, N failed'.

What it checks, with qgis_process.bin (offscreen; the plugin enabled in a throw-away profile):
the provider's algorithms are listed, also from the plugin zip extracted into a profile; 'Test
the interpreter' prints the tool's version, with the interpreter from WINDOWED_CLASSIFY_PYTHON
or from the Processing setting; 'Classify raster stack' (from a folder, from layers, from the
config it wrote) gives the CLI's output pixel for pixel with the .qml style beside it; a
folder where one feature is only a .vrt gives the CLI's output of the same folder; 'Check'
passes, and fails naming an existing output; a bad config and a missing model fail with the
tool's message; 'Sample covariates at points' gives the CLI's values; 'Design sample' draws
the CLI's points for the same seed; labelled in PyQGIS (the 'label' command of this script),
they give 'Assess accuracy and area' the CLI's estimates. In a PyQGIS process (the
'inprocess' command): a run cancelled at its first pass-2 progress leaves the journal, the log
says how to resume, and the resumed run gives the CLI's output; the setting refuses an
interpreter without the tool; loaded into a project, the classes carry the tool's paletted
style with the class names, the designed points are loaded, and so is the assessment's table
with numeric fields.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PLUGIN_ROOT = ROOT / "qgis_plugin"
PLUGIN = "windowed_classify_qgis"
QGIS_PROCESS = shutil.which("qgis_process.bin") or "/usr/bin/qgis_process.bin"
ALGORITHMS = ("classify", "check", "sample", "design", "assess", "testinterpreter")
CLASSES = ["cropland", "forest", "grassland", "wetland"]


class Failed(AssertionError):
    pass


def check(condition: object, message: str) -> None:
    if not condition:
        raise Failed(message)


class Suite:
    def __init__(self, work: Path, venv_python: Path) -> None:
        self.work = work
        self.venv_python = venv_python
        self.passed: list[str] = []
        self.failed: list[str] = []
        home = work / "home"  # a throw-away QGIS profile: the user's is never touched
        runtime = work / "runtime"
        for folder in (home, runtime):
            folder.mkdir(parents=True, exist_ok=True)
        runtime.chmod(0o700)
        self.env = {
            **os.environ,
            "HOME": str(home),
            "XDG_RUNTIME_DIR": str(runtime),
            "XDG_CACHE_HOME": str(work / "cache"),  # the tool's statistics cache, isolated
            "QT_QPA_PLATFORM": "offscreen",
            "QGIS_PLUGINPATH": str(PLUGIN_ROOT),
            "WINDOWED_CLASSIFY_PYTHON": str(venv_python),
            "OMP_NUM_THREADS": "1",
        }

    # ------------------------------------------------------------------ helpers

    def step(self, name: str, fn: Callable[[], None]) -> None:
        started = time.monotonic()
        try:
            fn()
        except Exception as exc:  # a failed check, or a crash of the check itself
            self.failed.append(name)
            detail = str(exc) if isinstance(exc, Failed) else traceback.format_exc()
            print(f"FAIL {name} ({time.monotonic() - started:.1f} s): {detail}", flush=True)
        else:
            self.passed.append(name)
            print(f"PASS {name} ({time.monotonic() - started:.1f} s)", flush=True)

    def venv(self, *args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(self.venv_python), *args], env=self.env, capture_output=True, text=True
        )
        return done

    def qgis_process(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            [QGIS_PROCESS, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def run_alg(self, alg: str, **params: str | list[str]) -> tuple[int, dict, str]:
        """(exit code, qgis_process's JSON, stderr) of one algorithm run."""
        argv = ["run", f"windowed_classify:{alg}", "--json", "--"]
        for key, value in params.items():
            for item in value if isinstance(value, list) else [value]:
                argv.append(f"{key}={item}")
        done = self.qgis_process(*argv)
        try:
            result = json.loads(done.stdout) if done.stdout.strip() else {}
        except ValueError:
            result = {"unparsed": done.stdout}
        return done.returncode, result, done.stderr

    def same_pixels(self, a: Path, b: Path) -> None:
        done = self.venv(str(HERE / "stack_tools.py"), "compare", str(a), str(b))
        check(done.returncode == 0, f"{a} differs from {b}: {done.stdout}{done.stderr}")

    def cli_run(self, config: Path) -> None:
        done = self.venv("-m", "windowed_classify", "run", str(config))
        check(done.returncode == 0, f"the CLI failed on {config}: {done.stderr[-2000:]}")

    # ------------------------------------------------------------------ the data

    def make_data(self) -> None:
        for name, size in (("small", "400"), ("big", "1200")):
            done = self.venv(
                str(HERE / "stack_tools.py"), "make", str(self.work / name), "--size", size
            )
            check(done.returncode == 0, f"stack_tools make failed: {done.stderr}")
        done = self.venv(
            str(HERE / "stack_tools.py"),
            "vrt",
            str(self.work / "small"),
            str(self.work / "vrt"),
            "clay",
        )
        check(done.returncode == 0, f"stack_tools vrt failed: {done.stderr}")
        for name, model in (("small", "small"), ("big", "big"), ("vrt", "small")):
            (self.work / f"{name}_cli.yaml").write_text(
                f"rasters: {{folder: {name}/covariates}}\n"
                "nodata: {values: [-9999]}\n"
                f"model: {{path: {model}/model.pkl}}\n"
                f"output: {{path: cli/{name}.tif}}\n"
                "processing: {workers: 1, memory_mb: 32}\n",
                encoding="utf-8",
            )
            self.cli_run(self.work / f"{name}_cli.yaml")
        done = self.venv(
            "-m",
            "windowed_classify",
            "sample",
            str(self.work / "small_cli.yaml"),
            str(self.work / "small" / "points.csv"),
            "-o",
            str(self.work / "cli" / "points_covariates.csv"),
        )
        check(done.returncode == 0, f"the CLI's sample failed: {done.stderr}")

    def stack_params(self, name: str = "small") -> dict[str, str]:
        return {
            "FOLDER": str(self.work / name / "covariates"),
            "MODEL": str(self.work / name / "model.pkl"),
            "NODATA_VALUES": "-9999",
            "WORKERS": "1",
            "MEMORY_MB": "32",
        }

    # ------------------------------------------------------------------ qgis_process

    def enable_plugin(self) -> None:
        done = self.qgis_process("plugins", "enable", PLUGIN)
        check(done.returncode == 0, f"plugins enable failed: {done.stdout}{done.stderr}")
        check(f"* {PLUGIN}" in done.stdout, f"{PLUGIN} is not enabled:\n{done.stdout}")

    def list_algorithms(self) -> None:
        started = time.monotonic()
        done = self.qgis_process("list")
        print(f"  qgis_process list: {time.monotonic() - started:.2f} s")
        check(done.returncode == 0, f"qgis_process list failed: {done.stderr}")
        check("Windowed classify" in done.stdout, "the provider is not listed")
        for alg in ALGORITHMS:
            check(f"windowed_classify:{alg}" in done.stdout, f"{alg} is not listed")

    def zip_install(self) -> None:
        """The zip of scripts/build_qgis_plugin.py, extracted where 'Install from ZIP' puts
        it (the profile's python/plugins), without QGIS_PLUGINPATH: the provider loads."""
        dist = self.work / "dist"
        done = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "build_qgis_plugin.py"), "-o", str(dist)],
            capture_output=True,
            text=True,
        )
        check(done.returncode == 0, f"build_qgis_plugin failed: {done.stderr}")
        home = self.work / "zip_home"
        plugins = home / ".local/share/QGIS/QGIS3/profiles/default/python/plugins"
        plugins.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(done.stdout.strip()) as z:
            z.extractall(plugins)
        env = {**self.env, "HOME": str(home)}
        del env["QGIS_PLUGINPATH"]
        for argv in (["plugins", "enable", PLUGIN], ["list"]):
            ran = subprocess.run(
                [QGIS_PROCESS, *argv], env=env, capture_output=True, text=True, timeout=300
            )
            check(ran.returncode == 0, f"qgis_process {argv[0]} failed: {ran.stderr}")
        for alg in ALGORITHMS:
            check(f"windowed_classify:{alg}" in ran.stdout, f"{alg} not listed from the zip")

    def test_interpreter(self) -> None:
        code, result, err = self.run_alg("testinterpreter")
        check(code == 0, f"testinterpreter failed: {err}")
        version = self.venv("-m", "windowed_classify", "--version").stdout.strip()
        check(result["results"]["VERSION"] == version, f"version {result['results']} != {version}")
        print(f"  {result['results']['PYTHON']}: {version}")

    def setting_interpreter(self) -> None:
        """Without the environment variable, the Processing setting (stored in the profile's
        QGIS3.ini, where the options dialog or a script puts it) gives the interpreter."""
        ini = self.work / "home/.local/share/QGIS/QGIS3/profiles/default/QGIS/QGIS3.ini"
        check(ini.is_file(), f"no profile settings {ini}")
        text = ini.read_text(encoding="utf-8")
        check("[Processing]" not in text, f"{ini} has a [Processing] section already")
        line = f"Configuration\\WINDOWED_CLASSIFY_PYTHON={self.venv_python}"
        ini.write_text(text.rstrip("\n") + f"\n\n[Processing]\n{line}\n", encoding="utf-8")
        saved = self.env.pop("WINDOWED_CLASSIFY_PYTHON")
        try:
            code, result, err = self.run_alg("testinterpreter")
        finally:
            self.env["WINDOWED_CLASSIFY_PYTHON"] = saved
        check(code == 0, f"testinterpreter from the setting failed: {err}")
        log = "\n".join(result.get("log", {}).get("info", []))
        check("from the Processing setting" in log, f"not from the setting:\n{log}")

    def old_tool_refused(self) -> None:
        """A tool older than the plugin's floor is refused before anything runs."""
        python = self.work / "old_venv" / "bin" / "python"
        python.parent.mkdir(parents=True, exist_ok=True)
        fake = HERE / "fake_tool.py"
        python.write_text(f'#!/bin/sh\nexec {sys.executable} "{fake}" "$@"\n', encoding="utf-8")
        python.chmod(0o755)
        saved = dict(self.env)
        self.env.update(WINDOWED_CLASSIFY_PYTHON=str(python), FAKE_TOOL_VERSION="0.1.0")
        try:
            code, _, err = self.run_alg(
                "classify", **self.stack_params(), OUTPUT=str(self.work / "old" / "p.tif")
            )
        finally:
            self.env = saved
        check(code != 0, "a tool older than the floor was used")
        sys.path.insert(0, str(PLUGIN_ROOT))
        from windowed_classify_qgis.client import MIN_TOOL_VERSION

        floor = f"needs windowed_classify {MIN_TOOL_VERSION} or later"
        check(floor in err, f"not the floor's message: {err}")
        check(not (self.work / "old").exists(), "something was written for an old tool")

    def classify_folder(self) -> None:
        out = self.work / "q" / "prediction.tif"
        started = time.monotonic()
        code, result, err = self.run_alg("classify", **self.stack_params(), OUTPUT=str(out))
        print(f"  qgis_process run classify: {time.monotonic() - started:.2f} s")
        check(code == 0, f"classify failed ({code}): {err}")
        check(result["results"]["OUTPUT"] == str(out), f"OUTPUT is {result['results']}")
        self.same_pixels(out, self.work / "cli" / "small.tif")
        style = out.with_suffix(".qml")
        check(style.is_file(), f"no style {style}")
        check(result["results"]["STYLE"] == str(style), f"STYLE is {result['results']}")
        text = style.read_text(encoding="utf-8")
        check('type="paletted"' in text, "the style is not a paletted renderer")
        for label in CLASSES:
            check(f'label="{label}"' in text, f"class {label} not in the style")
        config = out.with_name("prediction.config.yaml")
        check(config.is_file(), f"no config beside the output ({config})")
        # the config beside the output repeats the run from the command line
        again = config.with_name("again.config.yaml")
        again.write_text(
            config.read_text(encoding="utf-8").replace("prediction.tif", "again.tif"),
            encoding="utf-8",
        )
        self.cli_run(again)
        self.same_pixels(out.with_name("again.tif"), out)
        log = "\n".join(result.get("log", {}).get("info", []))
        check("windowed_classify run" in log, f"the command is not in the log:\n{log}")

    def classify_layers(self) -> None:
        out = self.work / "q_layers" / "prediction.tif"
        covariates = sorted((self.work / "small" / "covariates").glob("*.tif"), reverse=True)
        params = self.stack_params()
        del params["FOLDER"]
        code, _, err = self.run_alg(
            "classify", **params, LAYERS=[str(p) for p in covariates], OUTPUT=str(out)
        )
        check(code == 0, f"classify from layers failed: {err}")
        self.same_pixels(out, self.work / "cli" / "small.tif")
        text = out.with_name("prediction.config.yaml").read_text(encoding="utf-8")
        check("files:" in text and "elevation:" in text, f"no rasters.files mapping:\n{text}")

    def classify_config(self) -> None:
        config = self.work / "q" / "prediction.config.yaml"
        code, result, err = self.run_alg("classify", CONFIG=str(config))
        check(code == 0, f"classify from a config failed: {err}")
        out = self.work / "q" / "prediction.tif"
        check(result["results"]["OUTPUT"] == str(out), f"OUTPUT is {result['results']}")
        self.same_pixels(out, self.work / "cli" / "small.tif")

    def classify_vrt(self) -> None:
        """A folder where one feature is only a .vrt (over a GeoTIFF elsewhere): the plugin
        writes no extensions, so the tool's own (with .vrt) apply, as for the CLI."""
        out = self.work / "q_vrt" / "prediction.tif"
        params = {**self.stack_params(), "FOLDER": str(self.work / "vrt" / "covariates")}
        code, result, err = self.run_alg("classify", **params, OUTPUT=str(out))
        check(code == 0, f"classify of the folder with a .vrt failed ({code}): {err}")
        self.same_pixels(out, self.work / "cli" / "vrt.tif")
        self.same_pixels(out, self.work / "cli" / "small.tif")  # the VRT is clay.tif's data
        text = out.with_name("prediction.config.yaml").read_text(encoding="utf-8")
        check("extensions" not in text, f"the plugin wrote extensions:\n{text}")
        log = "\n".join(result.get("log", {}).get("info", []))
        check("clay: ok (" in log and "clay.vrt)" in log, f"check did not list clay.vrt:\n{log}")

    def check_ok(self) -> None:
        out = self.work / "q_check" / "prediction.tif"
        code, result, err = self.run_alg("check", **self.stack_params(), OUTPUT=str(out))
        check(code == 0, f"check failed: {err}")
        check(result["results"]["READY"] is True, f"READY is {result['results']}")
        report = result["results"]["REPORT"]
        check("OK: the run would start." in report, f"no OK in the report:\n{report}")
        check(not out.parent.exists(), "check wrote something beside the output")

    def check_not_ready(self) -> None:
        out = self.work / "q" / "prediction.tif"  # exists
        code, _, err = self.run_alg("check", **self.stack_params(), OUTPUT=str(out), OVERWRITE="0")
        check(code != 0, "check passed although the output exists and may not be replaced")
        check("NOT READY" in err and "already exists" in err, f"not the tool's reason: {err}")
        check("Replace existing outputs" in err, f"no hint at the dialog's option: {err}")

    def bad_config(self) -> None:
        bad = self.work / "bad.config.yaml"
        bad.write_text(
            "rasters: {folder: small/covariates}\nnodata: {threshold: -1}\n"
            "model: {path: small/model.pkl}\noutput: {path: bad/p.tif}\n",
            encoding="utf-8",
        )
        for alg in ("classify", "check"):
            code, _, err = self.run_alg(alg, CONFIG=str(bad), OUTPUT=str(self.work / "x.tif"))
            check(code != 0, f"{alg} of a bad config did not fail")
            check(
                "config key 'nodata.threshold'" in err and "-1" in err,
                f"{alg}: the tool's message is not the algorithm's error: {err}",
            )
            check("Traceback" not in err, f"{alg}: a traceback: {err}")

    def missing_model(self) -> None:
        params = {**self.stack_params(), "MODEL": str(self.work / "no_such_model.pkl")}
        code, _, err = self.run_alg("classify", **params, OUTPUT=str(self.work / "m" / "p.tif"))
        check(code != 0, "classify with a missing model did not fail")
        check("no_such_model.pkl" in err, f"the error does not name the model: {err}")

    def sample(self) -> None:
        out_csv = self.work / "q_sample" / "covariates.csv"
        out_gpkg = self.work / "q_sample" / "points.gpkg"
        out_csv.parent.mkdir(parents=True, exist_ok=True)
        params = self.stack_params()
        del params["WORKERS"], params["MEMORY_MB"]
        code, result, err = self.run_alg(
            "sample",
            POINTS=str(self.work / "small" / "points.geojson"),  # EPSG:4326: reprojected
            **params,
            OUTPUT=str(out_gpkg),
            OUTPUT_CSV=str(out_csv),
        )
        check(code == 0, f"sample failed: {err}")
        check(out_gpkg.is_file(), "no output points")
        ours = _rows(out_csv)
        cli = _rows(self.work / "cli" / "points_covariates.csv")
        layers = ["elevation", "rain", "ndvi", "clay"]
        check(len(ours) == len(cli) == 5, f"{len(ours)} and {len(cli)} points")
        for plot, row in cli.items():
            got = [ours[plot][name] for name in layers]
            want = [row[name] for name in layers]
            check(got == want, f"point {plot}: {got} != the CLI's {want}")
        check(all(cli["004"][n] == "" for n in layers), "the point outside the grid has values")

    def design(self) -> None:
        """The plugin's sample is the CLI's for the same seed; the design file is beside it."""
        out = self.work / "q_design" / "points.gpkg"
        code, result, err = self.run_alg(
            "design",
            MAP=str(self.work / "cli" / "small.tif"),
            N="40",
            MINIMUM="5",
            SEED="7",
            OUTPUT=str(out),
        )
        check(code == 0, f"design failed ({code}): {err}")
        results = result["results"]
        check(results["POINTS"] == f"{out}|layername=points", f"POINTS is {results}")
        design = Path(results["DESIGN"])
        check(design == out.with_name("points.design.json") and design.is_file(), f"{results}")
        cli = self.work / "cli" / "points.gpkg"
        done = self.venv(
            "-m",
            "windowed_classify",
            "design",
            str(self.work / "cli" / "small.tif"),
            "--n",
            "40",
            "--minimum",
            "5",
            "--seed",
            "7",
            "-o",
            str(cli),
        )
        check(done.returncode == 0, f"the CLI's design failed: {done.stderr}")
        ours, theirs = _gpkg_rows(out), _gpkg_rows(cli)
        check(len(ours) == 40 and ours == theirs, f"{len(ours)} points, the CLI's differ")
        check({row[3] for row in ours} == {""}, "the reference column is not empty")

    def assess(self) -> None:
        """Labelled in QGIS, the points give the CLI's estimates; the table is a layer."""
        folder = self.work / "q_assess"
        folder.mkdir(exist_ok=True)
        for name in ("points.gpkg", "points.design.json"):
            shutil.copy(self.work / "q_design" / name, folder / name)
        points = folder / "points.gpkg"
        done = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "label",
                "--points",
                str(points),
                "--venv-python",
                str(self.venv_python),
            ],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        check(done.returncode == 0, f"labelling the points in PyQGIS failed: {done.stderr}")
        report = folder / "accuracy.json"
        code, result, err = self.run_alg(
            "assess",
            MAP=str(self.work / "cli" / "small.tif"),
            POINTS=str(points),
            REFERENCE="reference",
            OUTPUT=str(report),
        )
        check(code == 0, f"assess failed ({code}): {err}")
        results = result["results"]
        table = report.with_suffix(".csv")
        check(results["TABLE"] == f"{table}|option:AUTODETECT_TYPE=YES", f"TABLE is {results}")
        check(table.is_file() and report.with_suffix(".md").is_file(), f"{results}")
        check("overall" in results["SUMMARY"], f"no summary: {results['SUMMARY']!r}")
        cli = self.work / "cli" / "accuracy.json"
        done = self.venv(
            "-m",
            "windowed_classify",
            "assess",
            str(self.work / "cli" / "small.tif"),
            str(points),
            "--reference",
            "reference",
            "-o",
            str(cli),
        )
        check(done.returncode == 0, f"the CLI's assess failed: {done.stderr}")
        ours, theirs = json.loads(report.read_text()), json.loads(cli.read_text())
        for key in ("overall_accuracy", "users_accuracy", "producers_accuracy", "area"):
            check(ours[key] == theirs[key], f"{key}: {ours[key]} != the CLI's {theirs[key]}")
        check(ours["overall_accuracy"]["estimate"] < 1, "the labels were not changed in QGIS")

    # ------------------------------------------------------------------ PyQGIS

    def inprocess(self) -> None:
        done = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "inprocess",
                "--work",
                str(self.work),
                "--venv-python",
                str(self.venv_python),
            ],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        for line in done.stdout.splitlines():
            print("  " + line)
        check(done.returncode == 0, f"the PyQGIS checks failed: {done.stderr[-3000:]}")


def _gpkg_rows(path: Path) -> list[tuple]:
    """The points of a design GeoPackage, without the geometry blob (sqlite3: stdlib)."""
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT point_id, stratum, map_class, reference, x, y FROM points ORDER BY point_id"
        ).fetchall()


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return {row["plot"]: row for row in csv.DictReader(f)}


# ---------------------------------------------------------------------- in-process (PyQGIS)


def label(points: Path) -> int:
    """Fills in the 'reference' field of design points as a user does in QGIS (editing the
    layer): the map's class, but another one for every fifth point."""
    from qgis.core import QgsApplication, QgsVectorLayer, edit

    app = QgsApplication([], False)
    app.initQgis()
    layer = QgsVectorLayer(f"{points}|layername=points", "points", "ogr")
    if not layer.isValid():
        print(f"cannot open {points}", file=sys.stderr)
        return 1
    index = layer.fields().indexOf("reference")
    with edit(layer):
        for feature in layer.getFeatures():
            mapped = feature["map_class"]
            other = CLASSES[(CLASSES.index(mapped) + 1) % len(CLASSES)]
            value = other if feature["point_id"] % 5 == 0 else mapped
            layer.changeAttributeValue(feature.id(), index, value)
    del layer
    app.exitQgis()
    return 0


def inprocess(work: Path, venv_python: Path) -> int:
    """Cancel, resume and the styled layer, in a QGIS application of this process."""
    sys.path.append("/usr/share/qgis/python/plugins")  # Processing itself
    sys.path.insert(0, str(PLUGIN_ROOT))
    from qgis.core import (
        QgsApplication,
        QgsProcessingException,
        QgsProcessingFeedback,
        QgsProject,
        QgsRasterLayer,
    )
    from qgis.PyQt.QtCore import QVariant

    app = QgsApplication([], False)
    app.initQgis()
    import processing
    from processing.core.Processing import Processing

    Processing.initialize()
    from windowed_classify_qgis.provider import WindowedClassifyProvider

    provider = WindowedClassifyProvider()
    QgsApplication.processingRegistry().addProvider(provider)

    class CancelAtPass2(QgsProcessingFeedback):
        """Presses Cancel at the first pass-2 progress, as a user would."""

        def __init__(self) -> None:
            super().__init__()
            self.messages: list[str] = []

        def setProgressText(self, text: str) -> None:
            super().setProgressText(text)
            if text.startswith("pass 2"):
                self.cancel()

        def pushInfo(self, info: str) -> None:
            self.messages.append(info)
            super().pushInfo(info)

        def pushCommandInfo(self, info: str) -> None:
            self.messages.append(info)
            super().pushCommandInfo(info)

        def pushWarning(self, warning: str) -> None:
            self.messages.append(warning)
            super().pushWarning(warning)

        def reportError(self, error: str, fatalError: bool = False) -> None:
            self.messages.append(error)
            super().reportError(error, fatalError)

    class Log(CancelAtPass2):
        def __init__(self) -> None:
            super().__init__()
            self.percents: list[float] = []

        def setProgressText(self, text: str) -> None:
            QgsProcessingFeedback.setProgressText(self, text)

        def setProgress(self, progress: float) -> None:
            self.percents.append(progress)
            super().setProgress(progress)

    out = work / "q_cancel" / "prediction.tif"
    shutil.rmtree(out.parent, ignore_errors=True)  # a fresh start, also in a reused --work
    params = {
        "FOLDER": str(work / "big" / "covariates"),
        "MODEL": str(work / "big" / "model.pkl"),
        "NODATA_VALUES": "-9999",
        "WORKERS": 1,
        "MEMORY_MB": 32,
        "OUTPUT": str(out),
    }
    results: list[tuple[str, str | None]] = []

    def record(name: str, problem: str | None) -> None:
        results.append((name, problem))
        print(f"PASS {name}" if problem is None else f"FAIL {name}: {problem}", flush=True)

    # 1. cancel at the first pass-2 progress: the journal stays, the log says how to resume
    feedback = CancelAtPass2()
    error = ""
    try:
        processing.run("windowed_classify:classify", params, feedback=feedback)
    except QgsProcessingException as exc:
        error = str(exc)
    journal = out.with_name(".prediction.partial.journal.json")
    log = "\n".join(feedback.messages)
    problem = None
    if not feedback.isCanceled():
        problem = "the run never reached pass 2"
    elif not error.startswith("Canceled"):
        problem = f"a cancelled run did not fail as cancelled: {error!r}"
    elif out.exists():
        problem = "the run finished before the cancel took effect (output exists)"
    elif not journal.is_file():
        problem = f"no journal {journal} after the cancel; log:\n{log}"
    elif "--resume" not in error or "--resume" not in log:
        problem = f"the message does not say how to resume: {error!r}"
    print(f"  cancelled run's error: {error}")
    record("cancel_keeps_journal", problem)

    # 2. run again (Continue an interrupted run is ticked by default): resumes, same pixels
    feedback = Log()
    problem = None
    try:
        processing.run("windowed_classify:classify", params, feedback=feedback)
    except QgsProcessingException as exc:
        problem = f"the resumed run failed: {exc}"
    log = "\n".join(feedback.messages)
    if problem is None and "--resume" not in log:
        problem = f"the second run was not given --resume:\n{log}"
    elif problem is None and "resuming:" not in log:
        problem = f"the tool did not resume:\n{log}"
    bar = feedback.percents
    if problem is None and (not bar or bar != sorted(bar) or bar[-1] < 99.9):
        problem = f"the progress bar went {bar[:3]} ... {bar[-3:]}, not up to 100"
    if problem is None:
        done = subprocess.run(
            [
                str(venv_python),
                str(HERE / "stack_tools.py"),
                "compare",
                str(out),
                str(work / "cli" / "big.tif"),
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            problem = f"resumed output differs from the CLI's: {done.stdout}"
        elif journal.exists():
            problem = "the journal is still there after the resumed run"
    record("resume_equals_cli", problem)

    # 3. the Processing setting tests the interpreter when it is saved (the options dialog's
    #    OK): one without the tool is refused with the reason, the venv's is accepted
    from processing.core.ProcessingConfig import ProcessingConfig

    problem = None
    try:
        ProcessingConfig.setSettingValue("WINDOWED_CLASSIFY_PYTHON", "/usr/bin/python3")
        problem = "an interpreter without windowed_classify was accepted"
    except ValueError as exc:
        if "not installed in /usr/bin/python3" not in str(exc):
            problem = f"refused for another reason: {exc}"
    if problem is None:
        try:
            ProcessingConfig.setSettingValue("WINDOWED_CLASSIFY_PYTHON", str(venv_python))
        except ValueError as exc:
            problem = f"the venv's interpreter was refused: {exc}"
    record("setting_tests_interpreter", problem)

    # 4. loaded into a project: the tool's paletted style with the class names
    styled = work / "q_styled" / "classes.tif"
    small = {
        **params,
        "FOLDER": str(work / "small" / "covariates"),
        "MODEL": str(work / "small" / "model.pkl"),
        "OUTPUT": str(styled),
    }
    problem = None
    try:
        processing.runAndLoadResults("windowed_classify:classify", small, feedback=Log())
    except QgsProcessingException as exc:
        problem = f"runAndLoadResults failed: {exc}"
    if problem is None:
        layers = [
            lyr
            for lyr in QgsProject.instance().mapLayers().values()
            if isinstance(lyr, QgsRasterLayer)
        ]
        if len(layers) != 1:
            problem = f"{len(layers)} raster layers in the project"
        else:
            layer = layers[0]
            renderer = layer.renderer()
            labels = [c.label for c in renderer.classes()] if renderer.type() == "paletted" else []
            legend = [text for text, _ in renderer.legendSymbologyItems()]
            if layer.name() != "classes":
                problem = f"the layer is named {layer.name()!r}, not after its file"
            elif labels != CLASSES:
                problem = f"renderer {renderer.type()} with classes {labels}"
            elif legend[: len(CLASSES)] != CLASSES:
                problem = f"legend shows {legend}"
    record("loaded_with_style", problem)

    # 5. design: the points are loaded, ready to label; assess: its table is loaded
    drawn = work / "q_design_loaded" / "sample.gpkg"
    problem = None
    try:
        processing.runAndLoadResults(
            "windowed_classify:design",
            {"MAP": str(work / "cli" / "small.tif"), "N": 40, "MINIMUM": 5, "OUTPUT": str(drawn)},
            feedback=Log(),
        )
    except QgsProcessingException as exc:
        problem = f"design failed: {exc}"
    if problem is None:
        layers = QgsProject.instance().mapLayersByName("sample")
        fields = layers[0].fields().names() if layers else []
        if len(layers) != 1 or layers[0].featureCount() != 40 or "reference" not in fields:
            problem = f"loaded {[(x.name(), x.featureCount(), fields) for x in layers]}"
        elif layers[0].source() != f"{drawn}|layername=points":
            problem = f"the points layer is {layers[0].source()}"
    record("design_loads_points", problem)

    report = work / "q_assess_loaded" / "accuracy.json"
    problem = None
    try:
        processing.runAndLoadResults(
            "windowed_classify:assess",
            {
                "MAP": str(work / "cli" / "small.tif"),
                "POINTS": str(work / "q_assess" / "points.gpkg"),
                "REFERENCE": "reference",
                "OUTPUT": str(report),
            },
            feedback=Log(),
        )
    except QgsProcessingException as exc:
        problem = f"assess failed: {exc}"
    if problem is None:
        tables = QgsProject.instance().mapLayersByName("accuracy")
        if len(tables) != 1 or tables[0].featureCount() != len(CLASSES) + 1:
            problem = f"tables {[(x.name(), x.featureCount()) for x in tables]}"
        else:
            field = tables[0].fields().field("users_accuracy")
            if field.type() != QVariant.Double:
                problem = f"users_accuracy is {field.typeName()}, not a number"
    record("assess_loads_table", problem)

    QgsApplication.processingRegistry().removeProvider(provider)
    app.exitQgis()
    return 0 if all(p is None for _, p in results) else 1


# ---------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="all", choices=("all", "inprocess", "label"))
    parser.add_argument("--venv-python", type=Path, required=True, help="the tool's python")
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--points", type=Path, help="label: the design GeoPackage to label")
    args = parser.parse_args(argv)
    venv_python = args.venv_python.absolute()
    if args.command == "inprocess":
        return inprocess(args.work, venv_python)
    if args.command == "label":
        return label(args.points)

    work = args.work or Path(tempfile.mkdtemp(prefix="wc_qgis_"))
    work.mkdir(parents=True, exist_ok=True)
    suite = Suite(work.absolute(), venv_python)
    started = time.monotonic()
    try:
        suite.step("make_data", suite.make_data)
        suite.step("enable_plugin", suite.enable_plugin)
        suite.step("list_algorithms", suite.list_algorithms)
        if suite.failed:  # nothing below can work
            print(f"{len(suite.passed)} passed, {len(suite.failed)} failed")
            return 1
        suite.step("zip_install", suite.zip_install)
        suite.step("test_interpreter", suite.test_interpreter)
        suite.step("setting_interpreter", suite.setting_interpreter)
        suite.step("old_tool_refused", suite.old_tool_refused)
        suite.step("classify_folder", suite.classify_folder)
        suite.step("classify_layers", suite.classify_layers)
        suite.step("classify_config", suite.classify_config)
        suite.step("check_ok", suite.check_ok)
        suite.step("check_not_ready", suite.check_not_ready)
        suite.step("bad_config", suite.bad_config)
        suite.step("missing_model", suite.missing_model)
        suite.step("classify_vrt", suite.classify_vrt)
        suite.step("sample", suite.sample)
        suite.step("design", suite.design)
        suite.step("assess", suite.assess)
        suite.step("pyqgis", suite.inprocess)
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"QGIS tests took {time.monotonic() - started:.0f} s")
    print(f"{len(suite.passed)} passed, {len(suite.failed)} failed")
    return 0 if not suite.failed else 1


if __name__ == "__main__":
    sys.exit(main())
