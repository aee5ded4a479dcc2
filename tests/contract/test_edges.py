"""Edges a GIS user meets: the output inside the covariate folder, a model that fails."""

from __future__ import annotations

import copy
from pathlib import Path

import joblib
import numpy as np
from helpers import Case, read_output, run_main

import windowed_classify


def test_output_inside_the_covariate_folder_is_never_a_layer(case: Case) -> None:
    config = copy.deepcopy(case.config)
    config["output"]["path"] = str(case.folder / "prediction.tif")
    config["output"]["overwrite"] = True
    first = windowed_classify.run(config)
    assert first["ignored_layers"] == []
    codes_first, _ = read_output(case.folder / "prediction.tif")
    # The second run sees prediction.tif in the folder: not a layer, no warning, same result.
    second = windowed_classify.run(config)
    assert second["ignored_layers"] == []
    codes_second, _ = read_output(case.folder / "prediction.tif")
    assert np.array_equal(codes_first, codes_second)


class _Broken:
    """Pickles fine, then fails at predict, like a model trained on other columns."""

    def __init__(self, features: list[str]):
        self.feature_names_in_ = np.array(features, dtype=object)
        self.classes_ = np.array(["a", "b"], dtype=object)

    def predict(self, frame):  # noqa: ANN001 - sklearn-style signature
        raise ValueError("X has 3 features, but this model was fitted with 5")


def test_a_model_that_fails_to_predict_is_one_clear_error(case: Case, tmp_path: Path) -> None:
    model_path = tmp_path / "broken.pkl"
    joblib.dump(_Broken([layer.name for layer in case.stack.layers]), model_path)
    config = copy.deepcopy(case.config)
    config["model"]["path"] = str(model_path)
    config["processing"] = {"workers": 1}
    result = run_main(case.write_config("broken.yaml", config), cwd=Path(__file__).parent)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "failed to predict" in result.stderr and "broken.pkl" in result.stderr
    assert "fitted with 5" in result.stderr
    assert not case.output.exists()
    assert not list(case.output.parent.glob("*.tif"))
