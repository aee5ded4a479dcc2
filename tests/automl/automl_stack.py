"""What the AutoML tests train a model on, shared by the classifier's and the regressor's
modules: the covariates (mixed dtypes, nodata conventions and layouts), the training rows in
AutoML's order and dtypes, and the runtime's Python 3.11 workaround."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: helpers

from helpers import AZURE_NODATA, LayerSpec, Stack  # noqa: E402

# The order AutoML was trained with: not the order the rasters are discovered in
# (Clim_etaaann, Geol_class, Relief_dem, Zz_unused, veg/Veg_ndvi).
TRAIN_ORDER = ["Veg_ndvi", "Clim_etaaann", "Geol_class", "Relief_dem"]
TRAIN_DTYPES = {
    "Veg_ndvi": "float64",
    "Clim_etaaann": "float64",
    "Geol_class": "int64",
    "Relief_dem": "int64",
}
# What the scoring file says: AutoML took Geol_class (4 values) as categorical -> "object".
SCORING_DTYPES = {**TRAIN_DTYPES, "Geol_class": "object"}
LABELS = ["Bare rock", "Forest", "Grassland", "Wetland"]  # LabelEncoder's (sorted) order
HEIGHT, WIDTH = 560, 530  # 3 x 3 output tiles of 256, the last ones partial
NODATA_VALUES = [AZURE_NODATA]


def require_runtime() -> None:
    """Skip the calling test module unless the Azure AutoML runtime is importable; in the venv
    .ci/azureml.sh builds (WINDOWED_CLASSIFY_REQUIRE_AZUREML=1) a missing runtime is an error,
    since a skip there would hide a broken venv."""
    if os.environ.get("WINDOWED_CLASSIFY_REQUIRE_AZUREML") == "1":
        import azureml.automl.runtime  # noqa: F401
    else:
        pytest.importorskip(
            "azureml.automl.runtime",
            reason="needs the Azure AutoML runtime (build its venv with "
            "scripts/install-azureml.sh)",
        )


def allow_py311() -> None:
    """The runtime's 3.11 workaround (the tool's models/load.py does the same), needed here
    to *build* the model: without it importing ``data_transformation`` fails with NameError
    'Scope'."""
    from azureml.automl.core.onnx_convert.onnx_convert_constants import (
        OnnxConvertConstants,
    )

    if tuple(OnnxConvertConstants.OnnxIncompatiblePythonVersion) <= sys.version_info[:2]:
        OnnxConvertConstants.OnnxIncompatiblePythonVersion = (
            sys.version_info[0],
            sys.version_info[1] + 1,
        )


def covariates(folder: Path) -> Stack:
    """Four model layers of mixed dtype, nodata conventions and layouts, plus one unused."""
    rng = np.random.default_rng(20240611)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    shape = (HEIGHT, WIDTH)

    clim = (400 + 0.8 * xx + rng.normal(0, 20, shape)).astype(np.float32)
    clim[rng.random(shape) < 0.03] = np.float32(AZURE_NODATA)  # config nodata value
    clim[rng.random(shape) < 0.005] = np.nan
    clim[230:290, 200:300] = np.float32(AZURE_NODATA)  # a masked patch across 4 tiles

    dem = (yy * 6 + rng.integers(0, 200, shape)).astype(np.int16)
    dem[rng.random(shape) < 0.03] = -32768
    dem[512:, 512:] = -32768  # the bottom-right output tile is all masked: no model call

    geol = (1 + (yy // 40 + xx // 50) % 4).astype(np.uint8)
    geol[rng.random(shape) < 0.02] = 0

    wave = np.sin(xx / 30) * np.cos(yy / 25) * 0.6 + 0.2 + rng.normal(0, 0.05, shape)
    ndvi = np.clip(wave, -0.2, 0.95).astype(np.float32)
    ndvi[rng.random(shape) < 0.03] = -9999.0

    unused = rng.normal(0, 1, shape).astype(np.float32)
    return Stack(
        folder,
        [
            LayerSpec("Clim_etaaann", clim, "float32", None, ("tiled", 32)),
            LayerSpec("Relief_dem", dem, "int16", -32768, ("tiled", 64)),
            LayerSpec("Geol_class", geol, "uint8", 0, ("tiled", 32)),
            LayerSpec("Veg_ndvi", ndvi, "float32", -9999.0, ("tiled", 16), "veg", ".tiff"),
            LayerSpec("Zz_unused", unused, "float32", None, ("tiled", 32)),
        ],
    )


def training_frame(stack: Stack, n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """What the user trained on: pixels valid in every layer, in TRAIN_ORDER and dtypes."""
    layers = {spec.name: spec for spec in stack.layers}
    valid = np.ones((HEIGHT, WIDTH), bool)
    for name in TRAIN_ORDER:
        spec = layers[name]
        values = spec.data.astype(np.float32)
        valid &= np.isfinite(values) & (values != np.float32(AZURE_NODATA))
        if spec.file_nodata is not None:
            valid &= values != np.float32(spec.file_nodata)
    rng = np.random.default_rng(seed)
    picks = rng.choice(np.flatnonzero(valid), n, replace=False)
    frame = pd.DataFrame(
        {name: layers[name].data.ravel()[picks].astype(TRAIN_DTYPES[name]) for name in TRAIN_ORDER}
    )
    y = np.where(
        frame["Veg_ndvi"] > 0.45,
        "Forest",
        np.where(
            frame["Geol_class"] == 3,
            "Wetland",
            np.where(frame["Relief_dem"] < 900, "Grassland", "Bare rock"),
        ),
    ).astype(object)
    noise = rng.random(n) < 0.08
    y[noise] = rng.choice(np.array(LABELS, dtype=object), int(noise.sum()))
    return frame, y
