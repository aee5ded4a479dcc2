"""The provider's algorithms. Each one writes (or takes) a windowed_classify config, runs the
tool in its own Python environment through ``client`` and reports what it says; nothing of
the tool is imported into QGIS."""

from __future__ import annotations

import functools
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsCoordinateTransform,
    QgsFeature,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputBoolean,
    QgsProcessingOutputFile,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
    QgsProcessingUtils,
    QgsRasterLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant
from qgis.PyQt.QtGui import QIcon

from . import client
from .provider import ICON, configured_python

GROUP_ID = ""  # top level of the provider: only four algorithms
YAML_FILTER = "YAML config (*.yaml *.yml)"
MODEL_FILTER = "Models (*.pkl *.joblib *.pickle *.onnx);;All files (*)"

# (interpreter, command) -> does that tool's command know --progress? (not asked again)
_progress_supported: dict[tuple[str, str], bool] = {}


def _advanced(param: QgsProcessingParameterDefinition) -> QgsProcessingParameterDefinition:
    param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    return param


class _ApplyStyle(QgsProcessingLayerPostProcessorInterface):
    """Loads the tool's .qml into the classified layer once Processing has added it."""

    def __init__(self, qml: str) -> None:
        super().__init__()
        self.qml = qml

    def postProcessLayer(self, layer: Any, context: Any, feedback: Any) -> None:
        if isinstance(layer, QgsRasterLayer) and os.path.isfile(self.qml):
            message, ok = layer.loadNamedStyle(self.qml)
            if not ok:
                feedback.reportError(f"could not apply the style {self.qml}: {message}")
            layer.triggerRepaint()


# QGIS holds post-processors by pointer only: keep ours alive until the layer is loaded
# (one per output path, replaced by the next run to it).
_STYLERS: dict[str, _ApplyStyle] = {}


class _ToolAlgorithm(QgsProcessingAlgorithm):
    """What the algorithms share: the stack parameters, the interpreter and the tool run."""

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def group(self) -> str:
        return ""

    def groupId(self) -> str:
        return GROUP_ID

    def createInstance(self) -> QgsProcessingAlgorithm:
        return type(self)()

    def processAlgorithm(
        self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        """The tool's user errors (ClientError) become the algorithm's error, word for word."""
        try:
            return self._process(parameters, context, feedback)
        except client.ClientError as exc:
            raise QgsProcessingException(str(exc)) from None

    def _process(
        self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        raise NotImplementedError

    # -------------------------------------------------------------- parameters

    def add_stack_parameters(self) -> None:
        self.addParameter(
            QgsProcessingParameterFile(
                "CONFIG",
                "Existing config (YAML): when given, the stack and model parameters are unused",
                behavior=QgsProcessingParameterFile.File,
                optional=True,
                fileFilter=YAML_FILTER,
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                "FOLDER",
                "Folder of covariate rasters (searched recursively)",
                behavior=QgsProcessingParameterFile.Folder,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                "LAYERS",
                "Or covariate raster layers (a layer's name is its feature name)",
                layerType=QgsProcessing.TypeRaster,
                optional=True,
            )
        )
        self.addParameter(
            _advanced(
                QgsProcessingParameterString(
                    "EXTENSIONS", "File extensions of the layers in the folder", ".tif, .tiff"
                )
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                "MODEL",
                "Model file (model.pkl from Azure AutoML or scikit-learn, or .onnx)",
                optional=True,
                fileFilter=MODEL_FILTER,
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                "SCORING_FILE",
                "Azure AutoML scoring file (scoring_file_v_1_0_0.py; gives the features)",
                optional=True,
                fileFilter="Python (*.py)",
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                "NODATA_VALUES",
                "Nodata values (besides NaN; separated by commas)",
                "-3.3999999521443642e+38",
                optional=True,
            )
        )
        self.addParameter(
            _advanced(
                QgsProcessingParameterBoolean(
                    "USE_FILE_NODATA", "A file's own nodata value is nodata too", True
                )
            )
        )

    def add_threshold(self) -> None:
        self.addParameter(
            QgsProcessingParameterNumber(
                "THRESHOLD",
                "Mask a pixel when more than this many layers are nodata there (0: any)",
                QgsProcessingParameterNumber.Integer,
                0,
                minValue=0,
            )
        )

    def add_resources(self) -> None:
        self.addParameter(
            _advanced(
                QgsProcessingParameterNumber(
                    "MEMORY_MB",
                    "Working-memory budget (MB)",
                    QgsProcessingParameterNumber.Integer,
                    256,
                    minValue=1,
                )
            )
        )
        self.addParameter(
            _advanced(
                QgsProcessingParameterNumber(
                    "WORKERS",
                    "Workers (0: all cores)",
                    QgsProcessingParameterNumber.Integer,
                    0,
                    minValue=0,
                )
            )
        )

    def add_overwrite(self) -> None:
        self.addParameter(
            QgsProcessingParameterBoolean("OVERWRITE", "Replace existing outputs", True)
        )

    # -------------------------------------------------------------- reading them

    def config_file(self, parameters: dict, context: QgsProcessingContext) -> str | None:
        path = self.parameterAsFile(parameters, "CONFIG", context)
        return path or None

    def stack(self, parameters: dict, context: QgsProcessingContext) -> dict[str, Any]:
        """rasters + model keys for client.build_config, from the form."""
        folder = self.parameterAsFile(parameters, "FOLDER", context) or None
        layers = self.parameterAsLayerList(parameters, "LAYERS", context) or []
        files = None
        if layers:
            for layer in layers:
                if layer.providerType() != "gdal":
                    raise client.ClientError(
                        f"layer {layer.name()!r} is not a GDAL raster ({layer.providerType()})"
                    )
            files = client.layer_files(
                (layer.name(), layer.source().split("|")[0]) for layer in layers
            )
        values: dict[str, Any] = {
            "folder": folder,
            "files": files,
            "model": self.parameterAsFile(parameters, "MODEL", context),
            "scoring_file": self.parameterAsFile(parameters, "SCORING_FILE", context) or None,
        }
        if folder:
            values["extensions"] = client.parse_extensions(
                self.parameterAsString(parameters, "EXTENSIONS", context)
            )
        values["nodata_values"] = client.parse_numbers(
            self.parameterAsString(parameters, "NODATA_VALUES", context)
        )
        values["use_file_nodata"] = self.parameterAsBool(parameters, "USE_FILE_NODATA", context)
        return values

    # -------------------------------------------------------------- running the tool

    def interpreter(self, feedback: QgsProcessingFeedback) -> Path:
        python, source = client.resolve_interpreter(configured_python(), os.environ)
        feedback.pushInfo(f"windowed_classify interpreter: {python} (from the {source})")
        return python

    def run_tool(
        self,
        python: Path,
        command: str,
        config: str,
        feedback: QgsProcessingFeedback,
        **options: Any,
    ) -> client.RunResult:
        """Runs the tool with ``--progress json`` when it knows it (an older tool rejects the
        flag at once: then again without it, taking progress from its bars)."""
        env = client.tool_environment(os.environ)
        progress = command != "check" and _progress_supported.get((str(python), command), True)
        while True:
            argv = client.build_command(python, command, config, progress=progress, **options)
            feedback.pushCommandInfo(" ".join(shlex.quote(a) for a in argv))
            text = client.ProgressText()
            log = client.UsageFilter(lambda kind, line: self._log(feedback, kind, line))
            result = client.run_tool(
                argv,
                env=env,
                is_canceled=feedback.isCanceled,
                on_progress=functools.partial(self._progress, feedback, text=text),
                on_log=log,
            )
            if progress and client.progress_unsupported(result.returncode, result.stderr):
                _progress_supported[(str(python), command)] = False
                feedback.pushInfo(
                    "this windowed_classify has no --progress json: progress comes from its bars"
                )
                progress = False
                continue
            log.flush()
            if progress:
                _progress_supported[(str(python), command)] = True
            return result

    @staticmethod
    def _progress(
        feedback: QgsProcessingFeedback, percent: float, event: dict, text: client.ProgressText
    ) -> None:
        feedback.setProgress(percent)
        status = text(event)
        if status:
            feedback.setProgressText(status)

    @staticmethod
    def _log(feedback: QgsProcessingFeedback, kind: str, line: str) -> None:
        if kind == "warning":
            feedback.pushWarning(line)
        elif kind == "interrupted":
            feedback.reportError(line)
        elif kind == "info":
            feedback.pushInfo(line)
        elif line.strip():
            feedback.pushConsoleInfo(line)

    def fail_or_cancel(
        self,
        result: client.RunResult,
        command: str,
        python: Path,
        config: str,
        feedback: QgsProcessingFeedback,
        resume: bool = False,
        journal: Path | None = None,
    ) -> None:
        """Raises the algorithm's error when the tool did not succeed."""
        if result.returncode == 0:
            return
        if result.canceled or result.returncode == client.EXIT_INTERRUPTED:
            # The tool says so after SIGTERM; killed (or ended at once on Windows), its
            # journal from the last checkpoint is what makes the run resumable.
            resumable = any("--resume" in line for line in result.stderr) or bool(
                journal and journal.exists()
            )
            if resumable and command == "run":
                hint = client.resume_hint(python, config)
                feedback.pushWarning(f"Canceled. {hint}")
                raise QgsProcessingException(f"Canceled: the run was interrupted. {hint}")
            raise QgsProcessingException(
                "Canceled: " + client.failure_message(command, result.returncode, result.stderr)
            )
        message = client.failure_message(
            command, result.returncode, result.stderr, result.stdout, python
        )
        raise QgsProcessingException(client.explain(message, resume))

    @staticmethod
    def work_folder() -> Path:
        """A fresh folder under Processing's temporary folder (deleted when QGIS exits)."""
        return Path(
            tempfile.mkdtemp(prefix="windowed_classify_", dir=QgsProcessingUtils.tempFolder())
        )


class ClassifyAlgorithm(_ToolAlgorithm):
    def name(self) -> str:
        return "classify"

    def displayName(self) -> str:
        return "Classify raster stack"

    def shortHelpString(self) -> str:
        return (
            "Applies a trained model (Azure AutoML model.pkl, scikit-learn, ONNX) to a stack of "
            "covariate rasters, window by window in flat memory, with the windowed_classify "
            "tool in its own Python environment, and loads the result with its style (class "
            "names and colours, or a colour ramp for a regression).\n\n"
            "Give either a folder of rasters (every band is a layer; feature name = file name "
            "without extension, or for a multi-band file the band's description, else the "
            "file name and the band number, as in terrain_2) or "
            "raster layers of the project (feature name = the layer's name), the model, and "
            "the output GeoTIFF; or simply an existing config YAML. A pixel is masked when more "
            "than 'threshold' of the model's layers are nodata there; other nodata values are "
            "filled with the layer's median.\n\n"
            "The config is written beside the output (prediction.tif -> "
            "prediction.config.yaml) so the run can be repeated from a terminal. Cancel stops "
            "the tool cleanly: run again with 'Continue an interrupted run' to go on from its "
            "last checkpoint.\n\n"
            "The tool's interpreter: Settings > Options > Processing > Providers > Windowed "
            "classify, or the environment variable WINDOWED_CLASSIFY_PYTHON."
        )

    def initAlgorithm(self, config: Any = None) -> None:
        self.add_stack_parameters()
        self.add_threshold()
        self.addParameter(  # optional: a config names its own output
            QgsProcessingParameterRasterDestination(
                "OUTPUT", "Classified raster (with a config: the config's)", optional=True
            )
        )
        self.addParameter(
            _advanced(
                QgsProcessingParameterRasterDestination(
                    "PROBABILITIES",
                    "Class probabilities (one band per class)",
                    optional=True,
                    createByDefault=False,
                )
            )
        )
        self.addParameter(
            _advanced(
                QgsProcessingParameterRasterDestination(
                    "CONFIDENCE",
                    "Confidence (the highest class probability)",
                    optional=True,
                    createByDefault=False,
                )
            )
        )
        self.addParameter(
            _advanced(
                QgsProcessingParameterBoolean(
                    "COG", "Write Cloud Optimized GeoTIFFs (internal overviews)", False
                )
            )
        )
        self.addParameter(
            _advanced(
                QgsProcessingParameterFileDestination(
                    "PREVIEW",
                    "Quick-look PNG with a legend (needs matplotlib in the tool's environment)",
                    "PNG (*.png)",
                    optional=True,
                    createByDefault=False,
                )
            )
        )
        self.add_resources()
        self.add_overwrite()
        self.addParameter(
            QgsProcessingParameterBoolean(
                "RESUME", "Continue an interrupted run (from its last checkpoint)", True
            )
        )
        self.addOutput(QgsProcessingOutputFile("CONFIG_FILE", "Config written for the run"))
        self.addOutput(QgsProcessingOutputFile("REPORT", "Run report (JSON)"))
        self.addOutput(QgsProcessingOutputFile("STYLE", "QGIS style of the classes (.qml)"))

    def _process(
        self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        python = self.interpreter(feedback)
        resume = self.parameterAsBool(parameters, "RESUME", context)
        overwrite = self.parameterAsBool(parameters, "OVERWRITE", context)
        given = self.config_file(parameters, context)
        form_output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        if given:
            config_file = given
            expected = client.output_of_config(given)
            if form_output:  # the config names its outputs; nothing will be at the form's
                self._forget_layer(context, form_output)
            feedback.pushInfo(f"running the config {given}; the form's other values are unused")
            options: dict[str, Any] = {"overwrite": overwrite}
        else:
            values = self.stack(parameters, context)
            expected = form_output
            config = client.build_config(
                **values,
                output=form_output,
                threshold=self.parameterAsInt(parameters, "THRESHOLD", context),
                overwrite=overwrite,
                probabilities=self.parameterAsOutputLayer(parameters, "PROBABILITIES", context)
                or None,
                confidence=self.parameterAsOutputLayer(parameters, "CONFIDENCE", context) or None,
                cog=self.parameterAsBool(parameters, "COG", context),
                preview=self.parameterAsFileOutput(parameters, "PREVIEW", context) or None,
                memory_mb=self.parameterAsInt(parameters, "MEMORY_MB", context),
                workers=self.parameterAsInt(parameters, "WORKERS", context),
            )
            config_file = str(
                client.write_config(client.config_path_for(form_output), config, python)
            )
            feedback.pushInfo(f"config written beside the output: {config_file}")
            options = {}
        # --resume only when there is something to resume: else the tool warns on every run.
        options["resume"] = resume and (
            expected is None or client.journal_path_for(expected).exists()
        )
        result = self.run_tool(python, "run", config_file, feedback, **options)
        journal = client.journal_path_for(expected) if expected else None
        self.fail_or_cancel(result, "run", python, config_file, feedback, resume, journal)

        output = result.output_path() or expected
        if not output:
            raise QgsProcessingException("the tool did not say where it wrote the classes")
        style = client.style_path_for(output)
        if style.is_file():
            feedback.pushInfo(f"style: {style}")
        else:
            feedback.pushWarning(f"the tool wrote no style file {style}")
        self._load_with_style(context, output, str(style), from_form=not given)
        report = result.report_path() or str(client.report_path_for(output))
        outputs = {"OUTPUT": output, "CONFIG_FILE": config_file, "REPORT": report}
        outputs["STYLE"] = str(style) if style.is_file() else None
        for key in ("PROBABILITIES", "CONFIDENCE"):
            if not given:
                path = self.parameterAsOutputLayer(parameters, key, context)
                if path:
                    outputs[key] = path
        return outputs

    @staticmethod
    def _forget_layer(context: QgsProcessingContext, path: str) -> None:
        layers = context.layersToLoadOnCompletion()
        if path in layers:
            del layers[path]
            context.setLayersToLoadOnCompletion(layers)

    @staticmethod
    def _load_with_style(
        context: QgsProcessingContext, output: str, style: str, from_form: bool
    ) -> None:
        """Have Processing load the classes when the run ends and apply the tool's .qml to
        them (QGIS would pick up a same-named .qml by itself; this does not rely on it)."""
        if not context.willLoadLayerOnCompletion(output):
            if from_form:
                return  # the user unticked "Open output file after running"
            context.addLayerToLoadOnCompletion(
                output,
                QgsProcessingContext.LayerDetails(Path(output).stem, context.project(), "OUTPUT"),
            )
        details = context.layerToLoadOnCompletionDetails(output)
        if QgsProcessingUtils.tempFolder() not in output:
            details.name = Path(output).stem  # its file name rather than "Classified raster"
            details.forceName = True
        styler = _ApplyStyle(style)
        _STYLERS[output] = styler
        details.setPostProcessor(styler)


class CheckAlgorithm(_ToolAlgorithm):
    def name(self) -> str:
        return "check"

    def displayName(self) -> str:
        return "Check"

    def shortHelpString(self) -> str:
        return (
            "Reports what a run would do, without running the model: the grid, every layer "
            "and whether the run can use it, the model's features against the layers, the "
            "classes, the value ranges, warnings and estimates; then 'OK: the run would start' "
            "or every reason it would not, which makes the algorithm fail.\n\n"
            "Takes the same inputs as 'Classify raster stack' (or an existing config YAML). "
            "Nothing is written beside the output: the config goes to a temporary folder."
        )

    def initAlgorithm(self, config: Any = None) -> None:
        self.add_stack_parameters()
        self.add_threshold()
        self.addParameter(
            QgsProcessingParameterFileDestination(
                "OUTPUT",
                "Classified raster the run would write (with a config: the config's)",
                "GeoTIFF (*.tif *.tiff)",
                optional=True,
            )
        )
        self.add_resources()
        self.add_overwrite()
        self.addOutput(QgsProcessingOutputBoolean("READY", "The run would start"))
        self.addOutput(QgsProcessingOutputString("REPORT", "The check's report"))
        self.addOutput(QgsProcessingOutputFile("CONFIG_FILE", "Config checked"))

    def _process(
        self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        python = self.interpreter(feedback)
        config_file = self.config_file(parameters, context)
        if config_file is None:
            config = client.build_config(
                **self.stack(parameters, context),
                output=self.parameterAsFileOutput(parameters, "OUTPUT", context),
                threshold=self.parameterAsInt(parameters, "THRESHOLD", context),
                overwrite=self.parameterAsBool(parameters, "OVERWRITE", context),
                memory_mb=self.parameterAsInt(parameters, "MEMORY_MB", context),
                workers=self.parameterAsInt(parameters, "WORKERS", context),
            )
            config_file = str(
                client.write_config(self.work_folder() / "check.config.yaml", config, python)
            )
        result = self.run_tool(python, "check", config_file, feedback)
        report = "\n".join(result.stdout)
        if result.returncode == client.EXIT_NOT_READY:
            overwrite = self.parameterAsBool(parameters, "OVERWRITE", context)
            message = client.failure_message(
                "check", result.returncode, result.stderr, result.stdout
            )
            raise QgsProcessingException(message if overwrite else client.explain(message))
        self.fail_or_cancel(result, "check", python, config_file, feedback)
        return {"READY": True, "REPORT": report, "CONFIG_FILE": config_file}


class SampleAlgorithm(_ToolAlgorithm):
    def name(self) -> str:
        return "sample"

    def displayName(self) -> str:
        return "Sample covariates at points"

    def shortHelpString(self) -> str:
        return (
            "Adds to each point the value of every covariate layer under it (the model's "
            "features in the model's order, then the other layers), exactly as a run reads "
            "them: the float32 value, empty (NULL) where it is nodata or outside the grid. For "
            "training tables.\n\n"
            "The points are reprojected to the rasters' CRS (of the first layer, or "
            "rasters.reference) for the tool; the output keeps the points' geometry and "
            "attributes. The tool's CSV (attributes, x and y in the rasters' CRS, the values) "
            "can be kept too."
        )

    def initAlgorithm(self, config: Any = None) -> None:
        self.addParameter(
            QgsProcessingParameterFeatureSource("POINTS", "Points", [QgsProcessing.TypeVectorPoint])
        )
        self.add_stack_parameters()
        self.addParameter(
            QgsProcessingParameterFeatureSink(
                "OUTPUT", "Points with covariates", QgsProcessing.TypeVectorPoint
            )
        )
        self.addParameter(
            QgsProcessingParameterFileDestination(
                "OUTPUT_CSV",
                "The tool's CSV (x and y in the rasters' CRS)",
                "CSV (*.csv)",
                optional=True,
                createByDefault=False,
            )
        )

    def _process(
        self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        python = self.interpreter(feedback)
        source = self.parameterAsSource(parameters, "POINTS", context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, "POINTS"))
        work = self.work_folder()
        config_file = self.config_file(parameters, context)
        if config_file is None:
            values = self.stack(parameters, context)
            # sample needs output.path in the config, but an existing one does not matter
            config = client.build_config(**values, output=str(work / "unused.tif"))
            config_file = str(client.write_config(work / "sample.config.yaml", config, python))
            grid_raster = (
                client.first_raster(values["folder"], values["extensions"])
                if values["folder"]
                else next(iter(values["files"].values()))
            )
        else:
            grid_raster = client.rasters_of(client.read_yaml(config_file), config_file)
        if grid_raster is None:
            raise QgsProcessingException("no raster found to take the grid's CRS from")
        crs = QgsRasterLayer(str(grid_raster), "grid", "gdal").crs()
        if not crs.isValid():
            raise QgsProcessingException(f"{grid_raster} has no valid CRS to sample in")
        feedback.pushInfo(f"points reprojected to the rasters' CRS {crs.authid()} ({grid_raster})")

        points_csv = work / "points.csv"
        fields = source.fields()
        names = [f.name() for f in fields]
        features: dict[int, QgsFeature] = {}
        skipped_geometry = 0

        def rows() -> Any:
            nonlocal skipped_geometry
            transform = QgsCoordinateTransform(source.sourceCrs(), crs, context.transformContext())
            for row, feature in enumerate(source.getFeatures()):
                features[row] = QgsFeature(feature)
                point = _single_point(feature.geometry())
                if point is None:
                    skipped_geometry += 1
                    continue
                xy = transform.transform(point)
                attributes = [None if _is_null(v) else v for v in feature.attributes()]
                yield row, xy.x(), xy.y(), attributes

        skipped = client.write_points_csv(points_csv, names, rows())
        if skipped:
            feedback.pushWarning(
                "attribute(s) " + ", ".join(skipped) + " are not passed to the tool (the names "
                "x, y and _qgis_row are its own); they stay on the output points"
            )
        if skipped_geometry:
            feedback.pushWarning(
                f"{skipped_geometry} feature(s) without one point geometry get no values"
            )
        out_csv = self.parameterAsFileOutput(parameters, "OUTPUT_CSV", context) or str(
            work / "covariates.csv"
        )
        result = self.run_tool(
            python,
            "sample",
            config_file,
            feedback,
            points=str(points_csv),
            output=out_csv,
            overwrite=True,  # the output file was chosen (and confirmed) in the dialog
        )
        self.fail_or_cancel(result, "sample", python, config_file, feedback)

        with open(points_csv, encoding="utf-8") as f:
            points_columns = f.readline().rstrip("\r\n").split(",")
        layers, values = client.read_sample_csv(out_csv, points_columns)
        out_fields = QgsFields(fields)
        for name in layers:
            out_fields.append(QgsField(name, QVariant.Double))
        sink, dest = self.parameterAsSink(
            parameters, "OUTPUT", context, out_fields, source.wkbType(), source.sourceCrs()
        )
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, "OUTPUT"))
        empty: list[float | None] = [None] * len(layers)
        for row, feature in features.items():
            out = QgsFeature(out_fields)
            out.setGeometry(feature.geometry())
            out.setAttributes(list(feature.attributes()) + list(values.get(row, empty)))
            sink.addFeature(out, QgsFeatureSink.FastInsert)
        return {"OUTPUT": dest, "OUTPUT_CSV": out_csv}


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, QVariant) and value.isNull())


def _single_point(geometry: QgsGeometry) -> Any:
    """The point of a point or single-part multipoint geometry, else None."""
    if geometry is None or geometry.isEmpty():
        return None
    if QgsWkbTypes.isMultiType(geometry.wkbType()):
        parts = geometry.asMultiPoint()
        return parts[0] if len(parts) == 1 else None
    return geometry.asPoint()


class TestInterpreterAlgorithm(_ToolAlgorithm):
    def name(self) -> str:
        return "testinterpreter"

    def displayName(self) -> str:
        return "Test the tool's interpreter"

    def shortHelpString(self) -> str:
        return (
            "Prints the version of windowed_classify in the configured interpreter (Settings "
            "> Options > Processing > Providers > Windowed classify, or the environment "
            "variable WINDOWED_CLASSIFY_PYTHON), or in the one given here."
        )

    def initAlgorithm(self, config: Any = None) -> None:
        self.addParameter(
            QgsProcessingParameterFile(
                "PYTHON", "Interpreter to test (default: the configured one)", optional=True
            )
        )
        self.addOutput(QgsProcessingOutputString("VERSION", "windowed_classify version"))
        self.addOutput(QgsProcessingOutputString("PYTHON", "Interpreter"))

    def _process(
        self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        given = self.parameterAsFile(parameters, "PYTHON", context)
        python = client.python_in(given) if given else self.interpreter(feedback)
        version = client.read_version(
            client.version_command(python), client.tool_environment(os.environ)
        )
        feedback.pushInfo(f"{python}: {version}")
        return {"VERSION": version, "PYTHON": str(python)}
