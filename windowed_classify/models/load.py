"""Load a model file: a joblib/pickle estimator (Azure AutoML included) or an ONNX model.

Loading a pickle runs code from it: only load models you trust.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from ..errors import ModelError

AZUREML_HINT = (
    "this model needs the Azure AutoML runtime (package azureml-automl-runtime); "
    "pip cannot install it as declared: build a venv with scripts/install-azureml.sh "
    "(docs/models.md, 'Azure AutoML models')"
)

# Packages a model may need that an extra of this project installs.
EXTRAS = {"quantile_forest": "quantile"}


def _patch_azureml_for_py311() -> None:
    """AutoML's onnx converter skips its imports on 3.11 but still uses the names.

    Raising its "incompatible Python" constant lets DataTransformer unpickle (measured with
    azureml-automl-runtime 1.62 on CPython 3.11: docs/models.md).
    """
    if sys.version_info < (3, 11):
        return
    try:
        from azureml.automl.core.onnx_convert.onnx_convert_constants import (
            OnnxConvertConstants,
        )
    except Exception:  # azureml missing or laid out differently: nothing to patch
        return
    current = getattr(OnnxConvertConstants, "OnnxIncompatiblePythonVersion", None)
    if isinstance(current, tuple) and current <= sys.version_info[:2]:
        OnnxConvertConstants.OnnxIncompatiblePythonVersion = (
            sys.version_info[0],
            sys.version_info[1] + 1,
        )


def _automl_runtime_installed() -> bool:
    try:
        return importlib.util.find_spec("azureml.automl.runtime") is not None
    except (ImportError, ValueError):
        return False


def load_model(path: Path) -> Any:
    """joblib.load with clear errors; applies the AutoML Python 3.11 fix first."""
    import joblib

    if not path.is_file():
        raise ModelError(f"model.path: model file not found: {path}")
    if path.suffix.lower() == ".onnx":
        from .onnx_model import load_onnx

        return load_onnx(path)
    _patch_azureml_for_py311()
    try:
        return joblib.load(path)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == "azureml":
            if _automl_runtime_installed():
                raise ModelError(
                    f"cannot load model {path}: it needs the module '{exc.name}', which the "
                    "installed Azure AutoML runtime does not have (was the model saved with "
                    "another release of azureml-automl-runtime?)"
                ) from None
            raise ModelError(f"cannot load model {path}: {AZUREML_HINT}") from None
        extra = EXTRAS.get((exc.name or "").split(".")[0])
        raise ModelError(
            f"cannot load model {path}: it needs the Python package '{exc.name}', "
            "which is not installed"
            + (f': pip install "windowed_classify[{extra}]"' if extra else "")
        ) from None
    except Exception as exc:  # a corrupt or foreign file: unpickling can raise anything
        raise ModelError(f"cannot load model {path}: {type(exc).__name__}: {exc}") from None
