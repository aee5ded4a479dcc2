"""predict_proba normalised to the legend's code order, whatever the model returns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

from windowed_classify.errors import ModelError
from windowed_classify.models.legend import Legend, class_probabilities


@pytest.fixture(scope="module")
def forest() -> tuple[RandomForestClassifier, pd.DataFrame]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    index = (x["a"] > 0).to_numpy().astype(int) + (x["b"] > 0.5).to_numpy().astype(int)
    y = np.array(["water", "forest", "urban"])[index]
    return RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y), x


class _AutoMLLike:
    """Returns a DataFrame whose columns are the labels, in its own order (as AutoML does)."""

    def __init__(self, inner: RandomForestClassifier):
        self.inner = inner

    def predict_proba(self, frame: pd.DataFrame) -> pd.DataFrame:
        p = self.inner.predict_proba(frame)
        return pd.DataFrame(p, columns=list(self.inner.classes_))[["urban", "water", "forest"]]


def test_ndarray_output_is_put_in_legend_order(forest) -> None:
    model, x = forest
    legend = Legend(("water", "urban", "forest"), "model.classes")
    got = class_probabilities(model, x, legend)
    raw = model.predict_proba(x)
    for code, label in enumerate(legend.labels):
        assert np.array_equal(got[:, code], raw[:, list(model.classes_).index(label)])
    # argmax of the normalised bands is the predicted label's code
    codes = np.array([legend.labels.index(v) for v in model.predict(x)])
    assert np.array_equal(got.argmax(axis=1), codes)


def test_dataframe_output_is_matched_by_label(forest) -> None:
    model, x = forest
    legend = Legend(("forest", "urban", "water"), "the model's classes_")
    assert np.array_equal(
        class_probabilities(_AutoMLLike(model), x, legend), class_probabilities(model, x, legend)
    )


def test_legend_label_unknown_to_the_model_gets_zero(forest) -> None:
    model, x = forest
    legend = Legend(("forest", "urban", "water", "ice"), "model.classes")
    got = class_probabilities(model, x, legend)
    assert (got[:, 3] == 0).all() and np.allclose(got.sum(axis=1), 1)


def test_model_class_missing_from_legend_is_an_error(forest) -> None:
    model, x = forest
    with pytest.raises(ModelError, match="'urban'.*model.classes"):
        class_probabilities(model, x, Legend(("forest", "water"), "model.classes"))


def test_a_model_without_predict_proba_is_an_error() -> None:
    with pytest.raises(ModelError, match="no predict_proba"):
        class_probabilities(object(), None, Legend(("a",), "model.classes"))
