"""Pass 2's pure parts (passes/window.py, models/legend.py): mask, fill, frame, codes, and
the probability encodings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from windowed_classify.errors import ModelError
from windowed_classify.models.legend import CodeMapper, Legend
from windowed_classify.outputs.kinds.encoding import encode_proba
from windowed_classify.passes.window import filled, masked_pixels, model_frame


def test_a_pixel_is_masked_when_more_than_threshold_layers_are_nodata() -> None:
    invalid = np.array([[0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 1, 1]], dtype=bool)  # 3 layers
    assert masked_pixels(invalid, 0).tolist() == [False, True, True, True]
    assert masked_pixels(invalid, 1).tolist() == [False, False, True, False]
    assert masked_pixels(invalid, 2).tolist() == [False, False, True, False]
    assert masked_pixels(invalid, 3).tolist() == [False, False, False, False]


def test_filled_rows_take_the_layer_median_where_nodata_and_keep_the_rest() -> None:
    values = np.array([[1, 2, 3], [10, 20, 30]], dtype=np.float32)  # 2 layers x 3 pixels
    invalid = np.array([[False, True, False], [False, False, True]])
    keep = np.array([True, True, False])
    x = filled(values, invalid, np.array([7.5, -1.0], np.float32), keep)
    assert x.flags.c_contiguous and x.dtype == np.float32
    assert x.tolist() == [[1.0, 10.0], [7.5, 20.0]]
    assert values[0, 1] == 2  # the window itself is not changed


def test_model_frame_gives_int64_only_to_whole_valued_integer_columns() -> None:
    x = np.array([[1.0, 2.5, 3.0], [4.0, 5.0, 6.5]], dtype=np.float32)
    frame = model_frame(x, ("a", "b", "c"), (True, True, False))
    assert list(frame.columns) == ["a", "b", "c"]
    assert frame.dtypes.tolist() == [np.int64, np.float32, np.float32]  # b holds 2.5
    plain = model_frame(x, ("a", "b", "c"), (False, False, False))
    pd.testing.assert_frame_equal(plain, pd.DataFrame(x, columns=["a", "b", "c"]))


def test_codes_follow_the_legend_and_an_unknown_label_is_named() -> None:
    to_codes = CodeMapper(Legend(("water", "forest", "urban"), "model.classes"))
    predicted = np.array(["urban", "water", "forest", "urban"], dtype=object)
    assert to_codes(predicted).tolist() == [2, 0, 1, 2]
    with pytest.raises(ModelError, match=r"'desert', which is not in model.classes"):
        to_codes(np.array(["water", "desert"], dtype=object))
    numeric = CodeMapper(Legend((10, 20, 30), "the model's classes_"))
    assert numeric(np.array([30, 10])).tolist() == [2, 0]
    with pytest.raises(ModelError):  # an int label never matches the text "1"
        CodeMapper(Legend(("1", "2"), "model.classes"))(np.array([1], dtype=object))


def test_probabilities_encode_as_whole_percent_half_to_even_or_float32() -> None:
    p = np.array([0.0, 0.125, 0.005, 0.015, 1.0])
    assert encode_proba(p, "uint8").tolist() == [0, 12, 0, 2, 100]
    assert encode_proba(p, "float32").dtype == np.float32
