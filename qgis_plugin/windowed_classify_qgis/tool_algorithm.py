"""What the provider's algorithms share: the interpreter (and the tool's version floor), the
covariate stack's parameters, running the tool with its progress and log, asking it
``check --json``, and turning its failures into the algorithm's error."""

from __future__ import annotations

import functools
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsMapLayer,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFile,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
    QgsProcessingUtils,
)
from qgis.PyQt.QtCore import QVariant
from qgis.PyQt.QtGui import QIcon

from . import client, runner
from .provider import ICON, configured_python

YAML_FILTER = "YAML config (*.yaml *.yml)"
MODEL_FILTER = "Models (*.pkl *.joblib *.pickle *.onnx);;All files (*)"
TOOL_DEFAULT = " (empty: the tool's default)"


def advanced(param: QgsProcessingParameterDefinition) -> QgsProcessingParameterDefinition:
    param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    return param


def optional_number(kind: Any, name: str, description: str, **limits: Any) -> Any:
    """A number the user may leave empty ('Not set'), which then stays out of the command."""
    return QgsProcessingParameterNumber(name, description, kind, None, True, **limits)


def raster_source(layer: QgsMapLayer) -> str:
    """The GDAL source of a raster layer, as the tool opens it."""
    if layer.providerType() != "gdal":
        raise client.ClientError(
            f"layer {layer.name()!r} is not a GDAL raster ({layer.providerType()})"
        )
    return client.absolute(layer.source().split("|")[0])


class ToolAlgorithm(QgsProcessingAlgorithm):
    """The base of the provider's algorithms."""

    python: Path  # the tool's interpreter, resolved and version-checked as a run starts
    FLAGS: dict[str, str] = {}  # the tool's option -> the parameter that gives it

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def group(self) -> str:
        return ""

    def groupId(self) -> str:
        return ""  # top level of the provider: only a few algorithms

    def createInstance(self) -> QgsProcessingAlgorithm:
        return type(self)()

    def processAlgorithm(
        self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        """The tool's user errors (ClientError) become the algorithm's error, word for word."""
        try:
            self.python = self.interpreter(feedback)
            return self._process(parameters, context, feedback)
        except client.ClientError as exc:
            raise QgsProcessingException(str(exc)) from None

    def _process(
        self, parameters: dict, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> dict[str, Any]:
        raise NotImplementedError

    # -------------------------------------------------------------- the stack's parameters

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
            advanced(
                QgsProcessingParameterString(
                    "EXTENSIONS",
                    "File extensions of the layers in the folder" + TOOL_DEFAULT,
                    optional=True,
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
                "Nodata values besides NaN, separated by commas ('none': NaN only)" + TOOL_DEFAULT,
                optional=True,
            )
        )
        self.addParameter(
            advanced(
                QgsProcessingParameterBoolean(
                    "USE_FILE_NODATA", "A file's own nodata value is nodata too", True
                )
            )
        )

    def add_threshold(self) -> None:
        self.addParameter(
            optional_number(
                QgsProcessingParameterNumber.Integer,
                "THRESHOLD",
                "Mask a pixel when more than this many layers are nodata there" + TOOL_DEFAULT,
                minValue=0,
            )
        )

    def add_resources(self) -> None:
        for name, text in (
            ("MEMORY_MB", "Working-memory budget (MB)"),
            ("WORKERS", "Workers"),
        ):
            self.addParameter(
                advanced(
                    optional_number(
                        QgsProcessingParameterNumber.Integer, name, text + TOOL_DEFAULT, minValue=1
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
        return client.absolute(path) if path else None

    def number(self, parameters: dict, name: str, context: QgsProcessingContext) -> Any:
        """An optional number's value, or None when it was left empty."""
        value = parameters.get(name)
        if value is None or value == "" or (isinstance(value, QVariant) and value.isNull()):
            return None
        kind = self.parameterDefinition(name).dataType()
        if kind == QgsProcessingParameterNumber.Integer:
            return self.parameterAsInt(parameters, name, context)
        return self.parameterAsDouble(parameters, name, context)

    def text(self, parameters: dict, name: str, context: QgsProcessingContext) -> str | None:
        return self.parameterAsString(parameters, name, context).strip() or None

    def stack(self, parameters: dict, context: QgsProcessingContext) -> dict[str, Any]:
        """The stack's keys for client.build_config, from the form (empty ones stay None)."""
        layers = self.parameterAsLayerList(parameters, "LAYERS", context) or []
        return {
            "folder": self.parameterAsFile(parameters, "FOLDER", context) or None,
            "files": client.layer_files((x.name(), raster_source(x)) for x in layers) or None,
            "extensions": client.parse_extensions(
                self.parameterAsString(parameters, "EXTENSIONS", context)
            ),
            "model": self.parameterAsFile(parameters, "MODEL", context) or None,
            "scoring_file": self.parameterAsFile(parameters, "SCORING_FILE", context) or None,
            "nodata_values": client.parse_numbers(
                self.parameterAsString(parameters, "NODATA_VALUES", context)
            ),
            "use_file_nodata": self.parameterAsBool(parameters, "USE_FILE_NODATA", context),
        }

    def resources(self, parameters: dict, context: QgsProcessingContext) -> dict[str, Any]:
        return {
            "memory_mb": self.number(parameters, "MEMORY_MB", context),
            "workers": self.number(parameters, "WORKERS", context),
        }

    # -------------------------------------------------------------- running the tool

    def interpreter(self, feedback: QgsProcessingFeedback) -> Path:
        """The configured interpreter, once its tool is known to be recent enough."""
        python, source = client.resolve_interpreter(configured_python(), os.environ)
        version = client.tool_version(python, client.tool_environment(os.environ))
        feedback.pushInfo(f"windowed_classify interpreter: {python} (from the {source}): {version}")
        return python

    def run_tool(
        self,
        command: str,
        feedback: QgsProcessingFeedback,
        *arguments: Any,
        show_stdout: bool = True,
        **options: Any,
    ) -> runner.RunResult:
        """Runs ``python -m windowed_classify COMMAND ...`` with its progress and log shown
        (and what it prints on stdout, unless that is a document for the plugin)."""
        argv = client.tool_command(self.python, command, *arguments, **options)
        feedback.pushCommandInfo(" ".join(shlex.quote(a) for a in argv))
        text = runner.ProgressText()

        def log(kind: str, line: str) -> None:
            if show_stdout or kind != "stdout":
                self._log(feedback, kind, line)

        return runner.run_tool(
            argv,
            env=client.tool_environment(os.environ),
            is_canceled=feedback.isCanceled,
            on_progress=functools.partial(self._progress, feedback, text=text),
            on_log=log,
        )

    def check(
        self, config_file: str, feedback: QgsProcessingFeedback, show: bool = True
    ) -> dict[str, Any]:
        """``check CONFIG --json``: its document (a summary and the warnings logged when
        ``show``); a config the tool cannot read is the algorithm's error."""
        result = self.run_tool(
            "check", feedback, config_file, json=True, progress=False, show_stdout=False
        )
        if result.interrupted:
            raise QgsProcessingException("Canceled")
        doc = client.check_document(result.stdout)
        if doc is None:
            message = client.failure_message("check", result.stderr, self.python, result.returncode)
            raise QgsProcessingException(client.explain(message))
        if show:
            for line in client.check_summary(doc):
                feedback.pushInfo(line)
            for warning in doc.get("warnings") or []:
                feedback.pushWarning(warning)
        return doc

    @staticmethod
    def _progress(
        feedback: QgsProcessingFeedback, percent: float, event: dict, text: runner.ProgressText
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

    def fail_unless_done(
        self,
        result: runner.RunResult,
        command: str,
        config: str | None = None,
        resume: bool = False,
    ) -> None:
        """Raises the algorithm's error when the tool did not succeed."""
        if result.returncode == 0:  # also when Cancel came as it finished
            return
        if result.interrupted:
            if command == "run" and config is not None:
                # The tool keeps the finished part and its journal when it stops on SIGTERM;
                # killed (or ended at once on Windows), its last checkpoint is resumable.
                hint = client.resume_hint(self.python, config)
                raise QgsProcessingException(f"Canceled: the run was interrupted. {hint}")
            raise QgsProcessingException("Canceled")
        message = client.failure_message(command, result.stderr, self.python, result.returncode)
        fields = {flag: self.parameterDefinition(p).description() for flag, p in self.FLAGS.items()}
        raise QgsProcessingException(client.explain(message, resume, fields))

    @staticmethod
    def work_folder() -> Path:
        """A fresh folder under Processing's temporary folder (deleted when QGIS exits)."""
        return Path(
            tempfile.mkdtemp(prefix="windowed_classify_", dir=QgsProcessingUtils.tempFolder())
        )
