"""After the map: 'Design sample' (``design``) draws the points to label, 'Assess accuracy and
area' (``assess``) estimates from the labelled points. The tool does the statistics; these
algorithms pass the dialog on and load what it wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputFile,
    QgsProcessingOutputString,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
    QgsProcessingUtils,
    QgsProviderRegistry,
    QgsVectorLayer,
)

from . import client
from .tool_algorithm import TOOL_DEFAULT, ToolAlgorithm, advanced, optional_number, raster_source

PAPERS = (
    "Olofsson, P. et al. (2014). Good practices for estimating area and assessing accuracy of "
    "land change. Remote Sensing of Environment 148: 42-57. Stehman, S. V. (2014). Estimating "
    "area and map accuracy for stratified random sampling when the strata are different from "
    "the map classes. International Journal of Remote Sensing 35: 4923-4939."
)


def _load_on_completion(context: QgsProcessingContext, uri: str, name: str, output: str) -> None:
    """Have Processing add a vector layer (or table) to the project when the algorithm ends
    (in the dialog or runAndLoadResults; qgis_process loads nothing)."""
    details = QgsProcessingContext.LayerDetails(
        name, context.project(), output, QgsProcessingUtils.LayerHint.Vector
    )
    context.addLayerToLoadOnCompletion(uri, details)


class DesignAlgorithm(ToolAlgorithm):
    FLAGS = {
        "--n": "N",
        "--target-se": "TARGET_SE",
        "--expected-ua": "EXPECTED_UA",
        "--strata": "STRATA",
        "--allocation": "ALLOCATION",
        "--minimum": "MINIMUM",
        "--seed": "SEED",
    }

    def name(self) -> str:
        return "design"

    def displayName(self) -> str:
        return "Design sample"

    def shortHelpString(self) -> str:
        return (
            "Draws a stratified random sample of a class map's pixels for assessing its "
            "accuracy and estimating the area of its classes (windowed_classify design): by "
            "default the strata are the map's classes and every stratum gets at least a "
            "minimum number of units, the rest in proportion to area (Olofsson et al. 2014, "
            "sec. 5.1.1). Give the sample size, or a target standard error of the overall "
            "accuracy with the user's accuracies you expect, or the sizes per stratum in the "
            "allocation.\n\n"
            "Writes a GeoPackage of points (layer 'points': point_id, stratum, map_class and "
            "an empty 'reference' column to fill in with the reference class of each point) "
            "and beside it the design (.design.json), which 'Assess accuracy and area' reads. "
            "The points are loaded into the project, ready to edit. Fields left empty take the "
            "tool's defaults; a seed makes the sample reproducible (without one, a fresh seed "
            "is recorded in the design).\n\n" + PAPERS
        )

    def initAlgorithm(self, config: Any = None) -> None:
        integer, double = QgsProcessingParameterNumber.Integer, QgsProcessingParameterNumber.Double
        self.addParameter(QgsProcessingParameterRasterLayer("MAP", "Class map"))
        self.addParameter(
            optional_number(integer, "N", "Sample size (number of points)", minValue=1)
        )
        self.addParameter(
            optional_number(
                double,
                "TARGET_SE",
                "Or a target standard error of the overall accuracy (e.g. 0.01)",
                minValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                "EXPECTED_UA",
                "With a target standard error: the user's accuracies expected (one value, one "
                "per stratum, or name=value pairs)" + TOOL_DEFAULT,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterRasterLayer(
                "STRATA", "Strata raster (empty: the map's classes)", optional=True
            )
        )
        self.addParameter(
            advanced(
                QgsProcessingParameterString(
                    "ALLOCATION",
                    "Allocation: olofsson, proportional, equal, or sizes N1,N2,... per stratum"
                    + TOOL_DEFAULT,
                    optional=True,
                )
            )
        )
        self.addParameter(
            advanced(
                optional_number(
                    integer,
                    "MINIMUM",
                    "Fewest points per stratum (olofsson allocation)" + TOOL_DEFAULT,
                    minValue=0,
                )
            )
        )
        self.addParameter(optional_number(integer, "SEED", "Random seed (empty: a fresh one)"))
        self.add_overwrite()
        self.addParameter(
            QgsProcessingParameterFileDestination("OUTPUT", "Sample points", "GeoPackage (*.gpkg)")
        )
        self.addOutput(QgsProcessingOutputVectorLayer("POINTS", "Sample points layer"))
        self.addOutput(QgsProcessingOutputFile("DESIGN", "Design (JSON)"))

    def _process(
        self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        strata = self.parameterAsRasterLayer(parameters, "STRATA", context)
        result = self.run_tool(
            "design",
            feedback,
            raster_source(self.parameterAsRasterLayer(parameters, "MAP", context)),
            output=client.absolute(self.parameterAsFileOutput(parameters, "OUTPUT", context)),
            n=self.number(parameters, "N", context),
            target_se=self.number(parameters, "TARGET_SE", context),
            expected_ua=self.text(parameters, "EXPECTED_UA", context),
            strata=raster_source(strata) if strata is not None else None,
            allocation=self.text(parameters, "ALLOCATION", context),
            minimum=self.number(parameters, "MINIMUM", context),
            seed=self.number(parameters, "SEED", context),
            overwrite=self.parameterAsBool(parameters, "OVERWRITE", context),
        )
        self.fail_unless_done(result, "design")
        points = result.outputs.get("points")
        if not points:
            raise client.ClientError("the tool did not say where it wrote the points")
        uri = f"{points}|layername=points" if points.lower().endswith(".gpkg") else points
        _load_on_completion(context, uri, Path(points).stem, "POINTS")
        return {"OUTPUT": points, "POINTS": uri, "DESIGN": result.outputs.get("design")}


class AssessAlgorithm(ToolAlgorithm):
    FLAGS = {"--reference": "REFERENCE", "--strata": "STRATA", "--layer": "POINTS"}

    def name(self) -> str:
        return "assess"

    def displayName(self) -> str:
        return "Assess accuracy and area"

    def shortHelpString(self) -> str:
        return (
            "Estimates the accuracy of a class map and the area of its classes, with 95% "
            "confidence intervals, from reference labels at sample points "
            "(windowed_classify assess): overall, user's and producer's accuracies, the error "
            "matrix in proportions of area, and per class its mapped and estimated area. "
            "Strata that are the map's classes use the estimators of Olofsson et al. (2014), "
            "other strata (a strata raster) those of Stehman (2014).\n\n"
            "The points are a layer saved in a file (as 'Design sample' writes them, with "
            "the reference field filled in and the edits saved); the design beside them "
            "(.design.json) is read when it is there. Writes the report (JSON) and beside it "
            "a Markdown file of tables and a CSV with one row per class, which is loaded as a "
            "table; the summary goes to the log.\n\n" + PAPERS
        )

    def initAlgorithm(self, config: Any = None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer("MAP", "Class map"))
        self.addParameter(
            QgsProcessingParameterVectorLayer(
                "POINTS", "Sample points with reference labels", [QgsProcessing.TypeVectorPoint]
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                "REFERENCE", "Field of the reference labels", "reference", "POINTS"
            )
        )
        self.addParameter(
            QgsProcessingParameterRasterLayer(
                "STRATA",
                "Strata raster the sample was drawn by (empty: the design's, or the map's classes)",
                optional=True,
            )
        )
        self.add_overwrite()
        self.addParameter(
            QgsProcessingParameterFileDestination("OUTPUT", "Accuracy report", "JSON (*.json)")
        )
        self.addOutput(QgsProcessingOutputFile("MARKDOWN", "Tables (Markdown)"))
        self.addOutput(QgsProcessingOutputVectorLayer("TABLE", "Table per class (CSV)"))
        self.addOutput(QgsProcessingOutputString("SUMMARY", "Summary"))

    def _process(
        self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        points, layer_name = _points_file(
            self.parameterAsVectorLayer(parameters, "POINTS", context)
        )
        strata = self.parameterAsRasterLayer(parameters, "STRATA", context)
        result = self.run_tool(
            "assess",
            feedback,
            raster_source(self.parameterAsRasterLayer(parameters, "MAP", context)),
            points,
            reference=self.parameterAsString(parameters, "REFERENCE", context),
            strata=raster_source(strata) if strata is not None else None,
            layer=layer_name,
            output=client.absolute(self.parameterAsFileOutput(parameters, "OUTPUT", context)),
            overwrite=self.parameterAsBool(parameters, "OVERWRITE", context),
        )
        self.fail_unless_done(result, "assess")
        outputs = result.outputs
        if not outputs.get("report"):
            raise client.ClientError("the tool did not say where it wrote the report")
        table = outputs.get("table")
        if table:  # typed columns: numbers stay numbers
            table = f"{table}|option:AUTODETECT_TYPE=YES"
            _load_on_completion(context, table, Path(outputs["table"]).stem, "TABLE")
        return {
            "OUTPUT": outputs["report"],
            "MARKDOWN": outputs.get("markdown"),
            "TABLE": table,
            "SUMMARY": "\n".join(result.stdout),
        }


def _points_file(layer: QgsVectorLayer | None) -> tuple[str, str | None]:
    """The file (and layer in it) the tool reads for a points layer of the project."""
    if layer is None:
        raise client.ClientError("no points layer was given")
    if layer.providerType() != "ogr":
        raise client.ClientError(
            f"layer {layer.name()!r} is not a file the tool can read ({layer.providerType()}): "
            "save it to a GeoPackage first"
        )
    if layer.isModified():
        raise client.ClientError(
            f"layer {layer.name()!r} has unsaved edits: save them first (the tool reads the file)"
        )
    parts = QgsProviderRegistry.instance().decodeUri("ogr", layer.source())
    return client.absolute(parts["path"]), parts.get("layerName") or None
