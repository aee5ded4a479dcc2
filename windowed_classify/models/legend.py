"""Class labels and their output codes: the legend, the label -> code mapping, and
``predict_proba`` columns put in the legend's order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from ..config import ModelConfig
from ..errors import ConfigError, ModelError


@dataclass(frozen=True)
class Legend:
    """Class labels in legend order; each has an output code: its index (``output.codes:
    index``, the notebook's rule) or, for integer labels, the label itself (``label``)."""

    labels: tuple[Any, ...]
    source: str
    codes: tuple[int, ...] | None = None  # None: the index, 0..n-1

    @property
    def output_codes(self) -> tuple[int, ...]:
        return self.codes if self.codes is not None else tuple(range(len(self.labels)))

    def as_dict(self) -> dict[str, str]:
        return {str(c): str(label) for c, label in zip(self.output_codes, self.labels, strict=True)}


def resolve_legend(model: Any, cfg: ModelConfig, codes: str = "index") -> Legend:
    """The labels (``model.classes``, else the model's ``classes_``) and their codes."""
    if cfg.classes is not None:
        legend = Legend(tuple(cfg.classes), "model.classes")
        known = model_classes(model)
        if known is not None:
            check_listed(known, legend.labels)
    else:
        classes = getattr(model, "classes_", None)
        if classes is None:
            raise ModelError(
                "the model has no classes_: list the labels in model.classes in the config "
                "(their order gives the output codes 0, 1, 2, ...)"
            )
        labels = tuple(_plain(c) for c in np.asarray(classes).tolist())
        legend = Legend(labels, "the model's classes_")
    if codes == "index":
        return legend
    text = [label for label in legend.labels if not _whole(label)]
    if text:
        raise ConfigError(
            f"config key 'output.codes': label writes integer class labels as themselves, "
            f"but {legend.source} holds {text[0]!r}; use output.codes: index"
        )
    return Legend(legend.labels, legend.source, tuple(int(label) for label in legend.labels))


def model_classes(model: Any) -> list[Any] | None:
    """The labels the model says it can predict (scikit-learn's and AutoML's ``classes_``,
    an ONNX model's labels), as plain values; None when it does not say."""
    classes = getattr(model, "classes_", None)
    if classes is None:
        return None
    return [_plain(c) for c in np.asarray(classes).tolist()]


def _kind(label: Any) -> str:
    if isinstance(label, str):
        return "text"
    return "a number" if isinstance(label, int | float | np.number) else type(label).__name__


def check_listed(known: Sequence[Any], listed: Sequence[Any]) -> None:
    """Every class of the model must be in ``model.classes``, as the same kind of value (a
    predicted label outside the list would stop the run mid-way)."""
    missing, mistyped = [], []
    for label in known:
        if any(label == x and _kind(label) == _kind(x) for x in listed):
            continue
        other = next((x for x in listed if str(x) == str(label)), None)
        if other is not None:
            mistyped.append(
                f"{other!r} ({_kind(other)}) where the model has {label!r} ({_kind(label)})"
            )
        else:
            missing.append(repr(label))
    if not missing and not mistyped:
        return
    parts = []
    if missing:
        parts.append(f"lacks the model's class(es) {', '.join(missing)}")
    if mistyped:
        parts.append("holds " + "; ".join(mistyped) + ": labels are compared as they are")
    raise ConfigError(
        f"config key 'model.classes' {list(listed)!r} {' and '.join(parts)} (the model's "
        f"classes: {list(known)!r}); every class the model can predict must be listed"
    )


def _whole(label: Any) -> bool:
    """An integer label (a whole float such as 10.0 too, as models trained on floats give)."""
    if isinstance(label, bool) or not isinstance(label, int | float | np.number):
        return False
    return float(label).is_integer()


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def check_codes_fit(legend: Legend, dtype: str, nodata: int) -> None:
    """Every code must fit the dtype and differ from the nodata code."""
    if legend.codes is not None:
        info = np.iinfo(dtype)
        for label, code in zip(legend.labels, legend.codes, strict=True):
            if not info.min <= code <= info.max:
                raise ConfigError(
                    f"class label {label!r} ({legend.source}) does not fit output.dtype {dtype} "
                    f"({info.min}..{info.max}) with output.codes: label"
                )
            if code == nodata:
                raise ConfigError(
                    f"class label {label!r} ({legend.source}) is output.nodata {nodata}, the "
                    "code of masked pixels; choose another output.nodata"
                )
        return
    n = len(legend.labels)
    top = int(np.iinfo(dtype).max)
    if n - 1 > top:
        raise ConfigError(
            f"{n} classes ({legend.source}) do not fit output.dtype {dtype} (codes 0..{top})"
        )
    if 0 <= nodata < n:
        raise ConfigError(
            f"output.nodata {nodata} collides with the code of class "
            f"{legend.labels[nodata]!r}: {n} classes use codes 0..{n - 1}; "
            "choose an output.nodata outside that range"
        )


class CodeMapper:
    """Vectorised label -> code mapping; an unknown label is a ModelError.

    A binary search over the sorted legend (about 10x faster than ``np.unique`` on text
    labels); labels of another type than the legend's fall back to a dictionary lookup.
    """

    def __init__(self, legend: Legend):
        self.legend = legend
        self.lookup = {label: code for code, label in enumerate(legend.labels)}
        labels = np.asarray(legend.labels)
        self.order = np.argsort(labels, kind="stable")
        self.sorted = labels[self.order]
        self.out = None if legend.codes is None else np.asarray(legend.codes, dtype=np.int64)

    def __call__(self, predicted: Sequence[Any] | np.ndarray) -> np.ndarray:
        """The output code of each predicted label."""
        index = self.index(predicted)
        return index if self.out is None else self.out[index]

    def index(self, predicted: Sequence[Any] | np.ndarray) -> np.ndarray:
        """The legend position of each predicted label."""
        pred = np.asarray(predicted).reshape(-1)
        if pred.dtype.kind == "O" and self.sorted.dtype.kind == "U":
            # sklearn returns text labels as objects: search them as fixed-width text, then
            # check one pixel of each code really held text (an int 1 must not match "1").
            try:
                codes = self._search(pred.astype(str))
            except ModelError:  # report the label as the model gave it
                return self._by_dict(pred)
            if codes is not None and all(
                isinstance(pred[int(np.argmax(codes == c))], str) for c in np.unique(codes)
            ):
                return codes
            return self._by_dict(pred)
        if pred.dtype.kind == self.sorted.dtype.kind or (
            pred.dtype.kind in "iuf" and self.sorted.dtype.kind in "iuf"
        ):
            codes = self._search(pred)
            return codes if codes is not None else self._by_dict(pred)
        return self._by_dict(pred)

    def _search(self, pred: np.ndarray) -> np.ndarray | None:
        """Codes by binary search; an unknown label raises; None when types do not compare."""
        try:
            pos = np.searchsorted(self.sorted, pred).clip(0, len(self.sorted) - 1)
            hit = self.sorted[pos] == pred
        except TypeError:
            return None
        if not hit.all():
            self._unknown(pred[~hit][0])
        return self.order[pos]

    def _by_dict(self, pred: np.ndarray) -> np.ndarray:
        uniques, inverse = np.unique(pred.astype(object), return_inverse=True)
        codes = np.empty(uniques.size, dtype=np.int64)
        for i, label in enumerate(uniques.tolist()):
            code = self.lookup.get(label)
            if code is None:
                self._unknown(label)
            codes[i] = code
        return codes[inverse.reshape(-1)]

    def _unknown(self, label: Any) -> NoReturn:
        raise ModelError(
            f"the model predicted the label {_plain(label)!r}, which is not in "
            f"{self.legend.source} {list(self.legend.labels)!r}"
        )


def class_probabilities(model: Any, frame: Any, legend: Legend) -> np.ndarray:
    """``predict_proba`` as a float64 (rows, classes) array in the legend's code order.

    scikit-learn and ONNX return an ndarray ordered like ``model.classes_``; Azure AutoML
    returns a DataFrame whose columns are the labels. A legend label the model does not know
    gets probability 0; a model class missing from the legend is an error (its probability
    would be lost).
    """
    if not callable(getattr(model, "predict_proba", None)):
        raise ModelError("the model has no predict_proba: it cannot give class probabilities")
    return order_probabilities(model, model.predict_proba(frame), legend)


def order_probabilities(model: Any, proba: Any, legend: Legend) -> np.ndarray:
    """A ``predict_proba`` result as float64 (rows, classes) in the legend's code order."""
    columns = getattr(proba, "columns", None)
    if columns is not None:  # a DataFrame: the columns are the labels
        labels = [_plain(c) for c in columns]
        values = np.asarray(proba.to_numpy(), dtype=np.float64)
    else:
        values = np.asarray(proba, dtype=np.float64)
        classes = getattr(model, "classes_", None)
        if classes is None:
            raise ModelError("the model's predict_proba gives no labels and it has no classes_")
        labels = [_plain(c) for c in np.asarray(classes).tolist()]
    if values.ndim != 2 or values.shape[1] != len(labels):
        raise ModelError(
            f"predict_proba returned shape {values.shape} for {len(labels)} classes {labels!r}"
        )
    code_of = {label: code for code, label in enumerate(legend.labels)}
    out = np.zeros((values.shape[0], len(legend.labels)), dtype=np.float64)
    for j, label in enumerate(labels):
        code = code_of.get(label)
        if code is None:
            raise ModelError(
                f"the model's class {label!r} is not in {legend.source} "
                f"{list(legend.labels)!r}: its probability would have no band"
            )
        out[:, code] = values[:, j]
    return out
