"""ONNX models (``model.path: model.onnx``) run through onnxruntime (extra ``onnx``).

``OnnxClassifier`` looks like a scikit-learn classifier to the rest of the tool:
``predict(frame)`` gives labels, ``predict_proba(frame)`` a (rows, classes) array in
``classes_`` order, ``classes_`` the labels (None when the file does not say), and
``feature_names_in_`` exists only when the file names the features.

Two input layouts are understood:

- one tensor input (rows x features): the columns are fed in the frame's order; the feature
  names come from the model's metadata ``features`` (a JSON list or comma-separated), or
  from ``model.features`` in the config;
- one input per feature (what skl2onnx makes from a list of ``initial_types``): the input
  names are the features, in graph order.

Values are fed as the input's declared element type (float, double or int64). Labels come
from the label output (``output_label`` in skl2onnx), probabilities from the probability
output, a ZipMap (a list of {label: probability}) or a plain (rows, classes) tensor. The
labels are the ZipMap's keys, or the metadata ``classes`` for a plain tensor.

A model with no label output, no ZipMap and no metadata ``classes`` is a regressor
(``is_regressor``: what skl2onnx makes of a scikit-learn regressor, one float output):
``predict`` gives that output's values, one per row.

The onnxruntime session uses one intra-op thread (the tool runs its own workers), is
created when first needed and is never pickled: a pickled ``OnnxClassifier`` travels as its
path and what was read from the file, and opens its own session where it is unpickled.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ModelError

INSTALL_HINT = 'ONNX models need onnxruntime: pip install "windowed_classify[onnx]"'

# onnxruntime's type strings -> the numpy dtype an input is fed as
INPUT_DTYPES: dict[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
}
LABEL_TYPES = ("tensor(string)", "tensor(int64)", "tensor(int32)")
SCORE_TYPES = ("tensor(float)", "tensor(double)")


@dataclass(frozen=True)
class _Input:
    name: str
    dtype: str  # a key of INPUT_DTYPES
    shape: tuple[int | str | None, ...]

    @property
    def width(self) -> int | None:
        """Declared number of columns (None when symbolic or not 2-D)."""
        if len(self.shape) == 2 and isinstance(self.shape[1], int):
            return self.shape[1]
        return None


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _onnxruntime(path: Path) -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ModelError(f"cannot load model {path}: {INSTALL_HINT}") from None
    return onnxruntime


def _open_session(path: Path) -> Any:
    """An InferenceSession on the CPU with one thread; a ModelError naming the file if not."""
    ort = _onnxruntime(path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        return ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise ModelError(f"cannot load ONNX model {path}: {_one_line(exc)}") from None


def _name_list(text: str) -> list[Any]:
    """A metadata list: JSON (``["a", "b"]``) or comma-separated (``a, b``)."""
    text = text.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, list):
            return value
    return [part.strip() for part in text.split(",") if part.strip()]


def load_onnx(path: Path) -> OnnxClassifier:
    """Open an ONNX classifier; every problem is a ModelError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model.path: model file not found: {path}")
    return OnnxClassifier(path)


class OnnxClassifier:
    """A scikit-learn-like classifier backed by an onnxruntime session (see the module doc)."""

    classes_: np.ndarray | None
    feature_names_in_: np.ndarray  # set only when the file names the features

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._session: Any = _open_session(self.path)
        session = self._session
        self.inputs = tuple(
            _Input(i.name, i.type, tuple(i.shape or ())) for i in session.get_inputs()
        )
        meta = dict(session.get_modelmeta().custom_metadata_map or {})
        self._check_inputs()

        features = self._features(meta)
        if features is not None:
            self.feature_names_in_ = np.asarray(features, dtype=object)
        self._width = len(features) if features is not None else self.inputs[0].width

        outputs = [(o.name, o.type) for o in session.get_outputs()]
        self.label_output, self.proba_output, self.zipmap = self._pick_outputs(outputs)
        self.is_regressor = self.label_output is None and not self.zipmap and "classes" not in meta
        self.classes_ = None if self.is_regressor else self._classes(meta)

    # ------------------------------------------------------------------ reading the file

    def _check_inputs(self) -> None:
        if not self.inputs:
            raise ModelError(f"ONNX model {self.path} has no input")
        for inp in self.inputs:
            if inp.dtype not in INPUT_DTYPES:
                raise ModelError(
                    f"ONNX model {self.path}: input {inp.name!r} is {inp.dtype}; only "
                    f"{', '.join(INPUT_DTYPES)} inputs can be fed with covariate values"
                )
        if len(self.inputs) > 1:
            for inp in self.inputs:
                if len(inp.shape) > 2 or (len(inp.shape) == 2 and inp.shape[1] not in (1, None)):
                    raise ModelError(
                        f"ONNX model {self.path} has {len(self.inputs)} inputs, but input "
                        f"{inp.name!r} has shape {list(inp.shape)}: with several inputs each "
                        "must take one feature (shape [N] or [N, 1])"
                    )

    def _features(self, meta: dict[str, str]) -> list[str] | None:
        """Input names (one input per feature) or the metadata ``features``, if any."""
        listed = [str(n) for n in _name_list(meta["features"])] if "features" in meta else None
        if len(self.inputs) > 1:
            names = [inp.name for inp in self.inputs]
            if listed is not None and listed != names:
                raise ModelError(
                    f"ONNX model {self.path}: its metadata 'features' {listed} differ from "
                    f"its inputs {names}"
                )
            return names
        width = self.inputs[0].width
        if listed is not None and width is not None and len(listed) != width:
            raise ModelError(
                f"ONNX model {self.path}: its metadata lists {len(listed)} features but its "
                f"input {self.inputs[0].name!r} takes {width}"
            )
        return listed

    def _pick_outputs(self, outputs: list[tuple[str, str]]) -> tuple[str | None, str | None, bool]:
        """(label output, probability output, whether that is a ZipMap)."""
        zipmaps = [name for name, kind in outputs if kind.startswith("seq(map(")]
        tensors = [(name, kind) for name, kind in outputs if kind.startswith("tensor(")]
        label = next((n for n, _ in tensors if "label" in n.lower()), None)
        if label is None:
            label = next((n for n, k in tensors if k in LABEL_TYPES), None)
        proba = zipmaps[0] if zipmaps else None
        if proba is None:
            proba = next(
                (
                    n
                    for n, k in tensors
                    if k in SCORE_TYPES
                    and n != label
                    and ("prob" in n.lower() or "score" in n.lower())
                ),
                None,
            )
        if proba is None:
            proba = next((n for n, k in tensors if k in SCORE_TYPES and n != label), None)
        if label is None and proba is None:
            raise ModelError(
                f"ONNX model {self.path} has no label or probability output "
                f"(outputs: {', '.join(f'{n} {k}' for n, k in outputs)})"
            )
        return label, proba, bool(zipmaps) and proba == zipmaps[0]

    def _classes(self, meta: dict[str, str]) -> np.ndarray | None:
        """ZipMap keys, else metadata ``classes``; both present must agree."""
        listed = _name_list(meta["classes"]) if "classes" in meta else None
        if listed is not None and self._label_type() == "tensor(int64)":
            # not integers: keep them as given, the code mapping names any mismatch
            with contextlib.suppress(TypeError, ValueError):
                listed = [int(c) for c in listed]
        keys = self._zipmap_keys() if self.zipmap else None
        if (
            keys is not None
            and listed is not None
            and [str(c) for c in keys] != [str(c) for c in listed]
        ):
            raise ModelError(
                f"ONNX model {self.path}: its metadata 'classes' {listed} differ from the "
                f"labels of its probability output {keys}"
            )
        found = keys if keys is not None else listed
        return None if found is None else np.asarray(found)

    def _label_type(self) -> str | None:
        for out in self._get_session().get_outputs():
            if out.name == self.label_output:
                return str(out.type)
        return None

    def _zipmap_keys(self) -> list[Any] | None:
        """The ZipMap's labels, in its order, read from a prediction on one row of zeros."""
        n = len(self.inputs) if len(self.inputs) > 1 else self._width
        if not n:
            return None  # the width is unknown until a frame arrives
        names = [f"f{j}" for j in range(n)]
        if hasattr(self, "feature_names_in_"):
            names = [str(c) for c in self.feature_names_in_]
        frame = pd.DataFrame(np.zeros((1, n), dtype=np.float32), columns=names)
        try:
            rows = self._run([self.proba_output], frame)[0]
            return [k.item() if isinstance(k, np.generic) else k for k in rows[0]]
        except Exception:  # an exotic graph: fall back on the metadata / model.classes
            return None

    # ------------------------------------------------------------------ running

    def _get_session(self) -> Any:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._session = _open_session(self.path)
        return self._session

    def _feed(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        if len(self.inputs) == 1:
            inp = self.inputs[0]
            if inp.width is not None and frame.shape[1] != inp.width:
                raise ModelError(
                    f"ONNX model {self.path}: input {inp.name!r} takes {inp.width} features, "
                    f"given {frame.shape[1]}: {list(frame.columns)}"
                )
            return {inp.name: self._cast(frame.to_numpy(), inp)}
        missing = [inp.name for inp in self.inputs if inp.name not in frame.columns]
        if missing:
            raise ModelError(
                f"ONNX model {self.path}: no column for its input(s) {', '.join(missing)} "
                f"(columns: {list(frame.columns)})"
            )
        feed = {}
        for inp in self.inputs:
            column = frame[inp.name].to_numpy()
            feed[inp.name] = self._cast(column if len(inp.shape) == 1 else column[:, None], inp)
        return feed

    def _cast(self, values: np.ndarray, inp: _Input) -> np.ndarray:
        dtype = INPUT_DTYPES[inp.dtype]
        if dtype is np.int64 and values.dtype.kind == "f":
            whole = np.isfinite(values) & (values == np.trunc(values))
            if not whole.all():
                raise ModelError(
                    f"ONNX model {self.path}: input {inp.name!r} takes int64, but a value is "
                    f"not a whole number: {float(values[~whole].flat[0])}"
                )
        return np.ascontiguousarray(values, dtype=dtype)

    def _run(self, outputs: list[str | None], frame: pd.DataFrame) -> list[Any]:
        try:
            return self._get_session().run(outputs, self._feed(frame))
        except ModelError:
            raise
        except Exception as exc:  # onnxruntime's own errors: shape, type, graph failures
            raise ModelError(
                f"ONNX model {self.path} failed to predict: {_one_line(exc)}"
            ) from None

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """One label per row (text labels as an object array, like scikit-learn); a
        regressor's values (rows, or rows x outputs when it has several)."""
        if self.is_regressor:
            values = np.asarray(self._run([self.proba_output], frame)[0])
            values = values.reshape(len(frame), -1)
            return values[:, 0] if values.shape[1] == 1 else values
        if self.label_output is not None:
            labels = np.asarray(self._run([self.label_output], frame)[0])
            return labels.reshape(-1)
        if self.classes_ is None:
            raise ModelError(
                f"ONNX model {self.path} has no label output and does not name its classes: "
                "list the labels in model.classes in the config"
            )
        return self.classes_[np.argmax(self.predict_proba(frame), axis=1)]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """float32 (rows, classes) with columns in ``classes_`` order."""
        if self.proba_output is None:
            raise ModelError(f"ONNX model {self.path} has no probability output")
        out = self._run([self.proba_output], frame)[0]
        if not self.zipmap:
            proba = np.asarray(out, dtype=np.float32)
            return proba.reshape(len(frame), -1)
        if len(out) == 0:
            width = 0 if self.classes_ is None else len(self.classes_)
            return np.zeros((0, width), dtype=np.float32)
        keys = list(out[0])
        flat = itertools.chain.from_iterable(row.values() for row in out)
        proba = np.fromiter(flat, dtype=np.float32, count=len(out) * len(keys))
        proba = proba.reshape(len(out), len(keys))
        classes = None if self.classes_ is None else self.classes_.tolist()
        if classes is not None and keys != classes:
            if sorted(map(str, keys)) != sorted(map(str, classes)):
                raise ModelError(
                    f"ONNX model {self.path}: its probability output's labels {keys} are not "
                    f"its classes {classes}"
                )
            where = {str(key): j for j, key in enumerate(keys)}
            proba = proba[:, [where[str(c)] for c in classes]]
        return proba

    # ------------------------------------------------------------------ pickling

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_session"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"
