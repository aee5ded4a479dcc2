"""Reading the AOA's training table and building the ``AoaModel`` from it.

The table is the CSV that ``sample`` writes (input columns as text, then one column per layer
holding the exact decimal of the float32 a run reads, empty for nodata), or any CSV or
GeoPackage with one column per model feature. Only the model's features (and the fold
column, when one is named) are read; other columns are ignored.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError
from ..inputs.tables import read_csv_text
from .method import AoaModel, fit_aoa, random_folds, resolve_weights

log = logging.getLogger(__name__)

CSV_SUFFIXES = (".csv", ".txt")
VECTOR_HINT = (
    "reading the AOA training table from a GeoPackage needs geopandas and pyogrio: pip install "
    '"windowed_classify[vector]" (or give a CSV, such as the one `sample` writes)'
)
# Cells that mean "no value": empty as `sample` writes nodata, or NA/NaN/null as R and pandas
# write missing values (compared without case and surrounding blanks).
MISSING = frozenset({"", "na", "nan", "null"})
_RANDOM = re.compile(r"^\s*random\s*:\s*(\S+)\s*$", re.IGNORECASE)


@dataclass
class TrainingTable:
    """The usable training rows: the model's features in its order, float32 values as float64."""

    path: Path
    features: tuple[str, ...]
    values: np.ndarray  # (n, p) float64 holding float32 values
    rows: np.ndarray  # (n,) 1-based data-row numbers (file order) of the usable rows
    folds: np.ndarray | None  # (n,) fold labels as text, when a fold column was asked for
    dropped: int  # rows with an empty value in a model feature

    @property
    def total(self) -> int:
        return len(self.rows) + self.dropped


# ----------------------------------------------------------------------------- folds spec


def parse_folds(value: Any) -> tuple[str, Any]:
    """``aoa.folds`` as ("none", None), ("column", name) or ("random", K).

    ``None`` or "none": no folds; {"random": K} (or the text "random: K"): K random folds;
    any other text: the name of the column holding each row's fold.
    """
    if value is None:
        return "none", None
    if isinstance(value, Mapping):
        if set(value) != {"random"}:
            raise ConfigError(
                f"aoa.folds: expected none, a column name or random: K, got {dict(value)!r}"
            )
        return "random", _fold_count(value["random"])
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ConfigError("aoa.folds: empty; give none, a column name or random: K")
        if text.lower() == "none":
            return "none", None
        match = _RANDOM.match(text)
        if match:
            return "random", _fold_count(match.group(1))
        return "column", text
    raise ConfigError(
        f"aoa.folds: expected none, a column name or random: K, got {type(value).__name__}"
    )


def _fold_count(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
        raise ConfigError(f"aoa.folds: random: {value!r} must be a whole number of folds >= 2")
    return int(value)


# ----------------------------------------------------------------------------- the table


def read_training(
    path: str | os.PathLike, features: Sequence[str], *, fold_column: str | None = None
) -> TrainingTable:
    """The usable rows of the training table at ``path``.

    A row with an empty value (see ``MISSING``) in any model feature is dropped, with a
    warning giving how many; a value that is not a number is an error naming its column and
    row. Values are cast to float32, as a run gives them to the model, so a pixel equal to a
    training point has DI 0 exactly.
    """
    path = Path(path)
    features = tuple(features)
    if not path.is_file():
        raise InputError(f"AOA training table not found: {path}")
    columns = _read_columns(path, [*features, *([fold_column] if fold_column else [])])

    n = len(columns[features[0]]) if features else 0
    values = np.empty((n, len(features)), dtype=np.float64)
    empty = np.zeros(n, dtype=bool)
    for j, name in enumerate(features):
        values[:, j], missing = _numbers(columns[name], name, path)
        empty |= missing
    rows = np.flatnonzero(~empty) + 1
    dropped = int(empty.sum())
    if dropped:
        shown = _rows_text(np.flatnonzero(empty) + 1)
        log.warning(
            "AOA training table %s: %d of %d row(s) have an empty value in a model feature "
            "(data rows %s): dropped",
            path,
            dropped,
            n,
            shown,
        )
    values = values[~empty]
    if values.shape[0] < 2:
        raise InputError(
            f"AOA training table {path}: {values.shape[0]} usable row(s) of {n}; the AOA needs "
            "at least 2 rows with a value in every model feature"
        )

    folds = None
    if fold_column:
        labels = np.array(
            [_label(v) for v, e in zip(columns[fold_column], empty, strict=True) if not e],
            dtype=object,
        )
        blank = np.flatnonzero(labels == "")
        if blank.size:
            raise InputError(
                f"AOA training table {path}: the fold column {fold_column!r} is empty in "
                f"{blank.size} usable row(s) (data rows {_rows_text(rows[blank])}); give every "
                "training row its fold"
            )
        folds = labels.astype(str)
    return TrainingTable(path, features, values, rows, folds, dropped)


def _read_columns(path: Path, wanted: Sequence[str]) -> dict[str, list[Any]]:
    """The wanted columns as lists of cells (text for a CSV, Python values for a vector file);
    every absent column in one error."""
    csv = path.suffix.lower() in CSV_SUFFIXES
    frame = read_csv_text(path, "AOA training table") if csv else _read_vector(path)
    names = [str(c) for c in frame.columns]
    absent = [c for c in dict.fromkeys(wanted) if c not in names]
    if absent:
        raise InputError(
            f"AOA training table {path} has no column(s) {', '.join(map(repr, absent))} "
            f"(its columns: {', '.join(names)})"
        )
    frame.columns = names
    return {c: frame[c].tolist() for c in dict.fromkeys(wanted)}


def _read_vector(path: Path) -> Any:
    try:
        import geopandas
    except ImportError:
        raise InputError(VECTOR_HINT) from None
    try:
        # attributes only: the points' geometry plays no part in the DI
        return geopandas.read_file(path, ignore_geometry=True)
    except Exception as exc:  # pyogrio/fiona raise their own types; the message is the news
        raise InputError(f"cannot read the AOA training table {path}: {exc}") from None


def _numbers(cells: Sequence[Any], column: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(values as float64 holding float32, missing mask) of one feature column."""
    out = np.zeros(len(cells), dtype=np.float64)
    missing = np.zeros(len(cells), dtype=bool)
    bad: list[tuple[int, Any]] = []
    for i, cell in enumerate(cells):
        value = _number(cell)
        if value is None:
            missing[i] = True
        elif isinstance(value, float):
            out[i] = value
        else:
            bad.append((i + 1, cell))
    if bad:
        shown = ", ".join(f"row {r}: {c!r}" for r, c in bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise InputError(
            f"AOA training table {path}: column {column!r} has {len(bad)} value(s) that are not "
            f"finite float32 numbers ({shown}); leave a cell empty for no value"
        )
    return out, missing


def _number(cell: Any) -> float | None | bool:
    """A finite float32 value as float; None when missing; False when not a number."""
    if cell is None:
        return None
    if isinstance(cell, str):
        text = cell.strip()
        if text.lower() in MISSING:
            return None
        try:
            value = float(text)  # correctly rounded: `sample`'s decimals come back exactly
        except ValueError:
            return False
    elif isinstance(cell, bool):
        return False
    elif isinstance(cell, (int, float, np.integer, np.floating)):
        value = float(cell)
        if math.isnan(value):
            return None  # a vector file's null number
    else:
        return False
    with np.errstate(over="ignore"):
        value32 = np.float32(value)
    return float(value32) if np.isfinite(value32) else False


def _label(cell: Any) -> str:
    """A fold label as text ("" when missing); numbers from a vector file print as numbers."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return ""
    if isinstance(cell, (np.integer, np.floating)):
        cell = cell.item()
    return str(cell).strip()


def _rows_text(rows: np.ndarray) -> str:
    return ", ".join(map(str, rows[:10].tolist())) + (", ..." if len(rows) > 10 else "")


# ----------------------------------------------------------------------------- entry point


def build_aoa(
    path: str | os.PathLike,
    features: Sequence[str],
    *,
    weights: str | Mapping[str, Any] | None = None,
    importances: Sequence[float] | np.ndarray | None = None,
    folds: Any = None,
    seed: int = 0,
    block_rows: int | None = None,
) -> AoaModel:
    """The AOA model for ``features`` (the model's, in its order) from the training table.

    ``weights``: ``aoa.weights`` (None: importance when ``importances`` is given, else equal);
    ``importances``: the model's ``feature_importances_`` in feature order, or None;
    ``folds``: ``aoa.folds`` (see ``parse_folds``); ``seed``: ``aoa.seed`` for random folds.
    Config errors come before the table is read.
    """
    features = tuple(features)
    kind, arg = parse_folds(folds)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"aoa.seed: {seed!r} must be a whole number >= 0")
    w, source = resolve_weights(weights, features, importances)
    table = read_training(path, features, fold_column=arg if kind == "column" else None)
    labels: np.ndarray | None = None
    description = "none"
    if kind == "random":
        labels = random_folds(table.values.shape[0], arg, int(seed))
        description = f"random: {arg} (seed {int(seed)})"
    elif kind == "column":
        labels = table.folds
        description = f"column {arg!r}"
    return fit_aoa(
        table.values,
        features,
        w,
        labels,
        weights_source=source,
        folds_description=description,
        rows_dropped=table.dropped,
        block_rows=block_rows,
    )
