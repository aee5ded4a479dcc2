"""Classify, Check, Sample and Test the interpreter. Each writes (or takes) a windowed_classify
config, asks the tool in its own Python environment through ``client`` and reports what it
says; nothing of the tool is imported into QGIS."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputBoolean,
    QgsProcessingOutputFile,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterDestination,
    QgsProcessingUtils,
    QgsRasterLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from . import client
from .provider import configured_python
from .tool_algorithm import ToolAlgorithm, advanced


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


class ClassifyAlgorithm(ToolAlgorithm):
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
            "filled with the layer's median. A field left empty takes the tool's default.\n\n"
            "The config is written beside the output (prediction.tif -> "
            "prediction.config.yaml) so the run can be repeated from a terminal, and checked "
            "by the tool first: every reason the run would not start is the algorithm's "
            "error, before any work. Cancel stops the tool cleanly: run again with 'Continue "
            "an interrupted run' to go on from its last checkpoint.\n\n"
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
        for name, text in (
            ("PROBABILITIES", "Class probabilities (one band per class)"),
            ("CONFIDENCE", "Confidence (the highest class probability)"),
        ):
            self.addParameter(
                advanced(
                    QgsProcessingParameterRasterDestination(
                        name, text, optional=True, createByDefault=False
                    )
                )
            )
        self.addParameter(
            advanced(
                QgsProcessingParameterBoolean(
                    "COG", "Write Cloud Optimized GeoTIFFs (internal overviews)", False
                )
            )
        )
        self.addParameter(
            advanced(
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
        self.addOutput(QgsProcessingOutputFile("STYLE", "QGIS style of the output (.qml)"))

    def _process(
        self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        resume = self.parameterAsBool(parameters, "RESUME", context)
        overwrite = self.parameterAsBool(parameters, "OVERWRITE", context)
        given = self.config_file(parameters, context)
        form_output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
        if given:
            config_file = given
            if form_output:  # the config names its outputs; nothing will be at the form's
                self._forget_layer(context, form_output)
            feedback.pushInfo(f"running the config {given}; the form's other values are unused")
        else:
            if not form_output:
                raise client.ClientError(
                    "give the classified raster (its config is written beside it) or a config"
                )
            config = client.build_config(
                **self.stack(parameters, context),
                threshold=self.number(parameters, "THRESHOLD", context),
                output=form_output,
                overwrite=overwrite,
                probabilities=self.parameterAsOutputLayer(parameters, "PROBABILITIES", context),
                confidence=self.parameterAsOutputLayer(parameters, "CONFIDENCE", context),
                cog=self.parameterAsBool(parameters, "COG", context),
                preview=self.parameterAsFileOutput(parameters, "PREVIEW", context),
                **self.resources(parameters, context),
            )
            config_file = str(
                client.write_config(client.config_path_for(form_output), config, self.python)
            )
            feedback.pushInfo(f"config written beside the output: {config_file}")
            # The run's own preparation, collecting every problem, before hours of work: a
            # sample of each layer and the model are read once more, in seconds.
            doc = self.check(config_file, feedback)
            if not doc.get("ok"):
                raise QgsProcessingException(client.explain(client.check_problems(doc)))
        result = self.run_tool(
            "run", feedback, config_file, resume=resume, overwrite=bool(given and overwrite)
        )
        self.fail_unless_done(result, "run", config_file, resume)

        outputs = result.outputs
        if not outputs:
            raise QgsProcessingException("the tool did not say what it wrote")
        output = next(iter(outputs.values()))  # the main raster comes first
        style = outputs.get("qml")
        if style:
            feedback.pushInfo(f"style: {style}")
        self._load_with_style(context, output, style, from_form=not given)
        return {
            "OUTPUT": output,
            "CONFIG_FILE": config_file,
            "REPORT": result.report,
            "STYLE": style,
            "PROBABILITIES": outputs.get("probabilities"),
            "CONFIDENCE": outputs.get("confidence"),
        }

    @staticmethod
    def _forget_layer(context: QgsProcessingContext, path: str) -> None:
        layers = context.layersToLoadOnCompletion()
        if path in layers:
            del layers[path]
            context.setLayersToLoadOnCompletion(layers)

    @staticmethod
    def _load_with_style(
        context: QgsProcessingContext, output: str, style: str | None, from_form: bool
    ) -> None:
        """Have Processing load the output when the run ends and apply the tool's .qml to it
        (QGIS would pick up a same-named .qml by itself; this does not rely on it)."""
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
        if style:
            styler = _ApplyStyle(style)
            _STYLERS[output] = styler
            details.setPostProcessor(styler)


class CheckAlgorithm(ToolAlgorithm):
    def name(self) -> str:
        return "check"

    def displayName(self) -> str:
        return "Check"

    def shortHelpString(self) -> str:
        return (
            "Asks the tool what a run would do, without running the model (check --json): the "
            "grid and why, every layer and whether the run can use it, the model's task, "
            "features and classes, the outputs and an estimate of the work; its warnings "
            "(layers the model does not use, values that look like undeclared nodata, ...); "
            "then 'OK: the run would start' or every reason it would not, which makes the "
            "algorithm fail.\n\n"
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
        self.addOutput(QgsProcessingOutputString("REPORT", "Summary of the check"))
        self.addOutput(QgsProcessingOutputFile("CONFIG_FILE", "Config checked"))

    def _process(
        self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        overwrite = self.parameterAsBool(parameters, "OVERWRITE", context)
        config_file = self.config_file(parameters, context)
        if config_file is None:
            config = client.build_config(
                **self.stack(parameters, context),
                threshold=self.number(parameters, "THRESHOLD", context),
                output=self.parameterAsFileOutput(parameters, "OUTPUT", context),
                overwrite=overwrite,
                **self.resources(parameters, context),
            )
            work = self.work_folder() / "check.config.yaml"
            config_file = str(client.write_config(work, config, self.python))
        doc = self.check(config_file, feedback)
        if not doc.get("ok"):
            message = client.check_problems(doc)
            raise QgsProcessingException(message if overwrite else client.explain(message))
        report = "\n".join(client.check_summary(doc))
        return {"READY": True, "REPORT": report, "CONFIG_FILE": config_file}


class SampleAlgorithm(ToolAlgorithm):
    def name(self) -> str:
        return "sample"

    def displayName(self) -> str:
        return "Sample covariates at points"

    def shortHelpString(self) -> str:
        return (
            "Adds to each point the value of every covariate layer under it (the model's "
            "features in the model's order, then the other layers), exactly as a run reads "
            "them: the float32 value, empty (NULL) where it is nodata or outside the grid. For "
            "training tables. The model is optional.\n\n"
            "The points are reprojected to the CRS of the rasters' grid (which the tool's "
            "check names) and handed to the tool as a CSV; the output keeps the points' own "
            "geometry and attributes. The tool's CSV (attributes, x and y in the rasters' CRS, "
            "the values) can be kept too."
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
        source = self.parameterAsSource(parameters, "POINTS", context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, "POINTS"))
        work = self.work_folder()
        config_file = self.config_file(parameters, context)
        if config_file is None:  # a sampling config: rasters and nodata (and model, if given)
            config = client.build_config(**self.stack(parameters, context))
            config_file = str(client.write_config(work / "sample.config.yaml", config, self.python))
        doc = self.check(config_file, feedback, show=False)
        grid = doc.get("grid")
        if not grid:
            raise QgsProcessingException("no grid to sample: " + client.check_problems(doc))
        crs = QgsCoordinateReferenceSystem.fromWkt(grid["crs_wkt"] or "")
        if crs.isValid():
            feedback.pushInfo(f"points reprojected to the rasters' CRS {grid.get('crs')}")
            transform = QgsCoordinateTransform(source.sourceCrs(), crs, context.transformContext())
        else:
            feedback.pushWarning("the rasters have no CRS: the points' coordinates are used as is")
            transform = None

        points_csv = work / "points.csv"
        fields = source.fields()
        features: dict[int, QgsFeature] = {}
        skipped_geometry = 0

        def rows() -> Any:
            nonlocal skipped_geometry
            for row, feature in enumerate(source.getFeatures()):
                features[row] = QgsFeature(feature)
                point = _single_point(feature.geometry())
                if point is None:
                    skipped_geometry += 1
                    continue
                xy = transform.transform(point) if transform is not None else point
                attributes = [None if _is_null(v) else v for v in feature.attributes()]
                yield row, xy.x(), xy.y(), attributes

        skipped = client.write_points_csv(points_csv, [f.name() for f in fields], rows())
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
            "sample",
            feedback,
            config_file,
            points_csv,
            output=out_csv,
            overwrite=True,  # the output file was chosen (and confirmed) in the dialog
        )
        self.fail_unless_done(result, "sample")

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


class TestInterpreterAlgorithm(ToolAlgorithm):
    def name(self) -> str:
        return "testinterpreter"

    def displayName(self) -> str:
        return "Test the tool's interpreter"

    def shortHelpString(self) -> str:
        return (
            "Prints the version of windowed_classify in the configured interpreter (Settings "
            "> Options > Processing > Providers > Windowed classify, or the environment "
            "variable WINDOWED_CLASSIFY_PYTHON), or in the one given here, and fails when it "
            f"is older than the plugin needs ({client.MIN_TOOL_VERSION})."
        )

    def initAlgorithm(self, config: Any = None) -> None:
        self.addParameter(
            QgsProcessingParameterFile(
                "PYTHON", "Interpreter to test (default: the configured one)", optional=True
            )
        )
        self.addOutput(QgsProcessingOutputString("VERSION", "windowed_classify version"))
        self.addOutput(QgsProcessingOutputString("PYTHON", "Interpreter"))

    def processAlgorithm(
        self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        try:
            given = self.parameterAsFile(parameters, "PYTHON", context)
            if given:
                python = client.python_in(given)
            else:
                python, source = client.resolve_interpreter(configured_python(), os.environ)
                feedback.pushInfo(f"the interpreter comes from the {source}")
            version = client.read_version(python, client.tool_environment(os.environ))
            feedback.pushInfo(f"{python}: {version}")
            client.require_version(version, python)
        except client.ClientError as exc:
            raise QgsProcessingException(str(exc)) from None
        return {"VERSION": version, "PYTHON": str(python)}
