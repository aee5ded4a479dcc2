"""The oracle: the original in-memory notebook, written as plainly as possible.

Every layer is read fully, one DataFrame holds every pixel x every model feature, the
median is pandas' `Series.median()` over float64, and the model sees one big DataFrame.
Nothing here imports the package under test.
"""

from __future__ import annotations

import ast
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import rasterio
from rasterio.crs import CRS
from rasterio.transform import Affine

DEFAULT_EXTENSIONS = (".tif", ".tiff")
# nodata.values' default: the ArcGIS/Azure float32 nodata.
DEFAULT_NODATA_VALUES = (-3.3999999521443642e38,)


@dataclass
class LayerStats:
    median: np.float32
    min: np.float32
    max: np.float32
    valid_count: int
    nodata_count: int


@dataclass
class Reference:
    codes: np.ndarray  # 2-D, output dtype, masked pixels = out_nodata
    masked: np.ndarray  # 2-D bool
    layers: dict[str, LayerStats]  # model layers only
    features: list[str]  # model order
    ignored: list[str]  # discovered layers the model does not use
    classes: list[Any]  # label order -> code
    out_nodata: int
    crs: CRS
    transform: Affine
    width: int
    height: int
    n_filled: int = 0  # (pixel, layer) nodata values replaced by a median

    @property
    def legend(self) -> dict[str, str]:
        return {str(i): str(label) for i, label in enumerate(self.classes)}

    @property
    def pixel_counts(self) -> dict[str, int]:
        values, counts = np.unique(self.codes, return_counts=True)
        return {str(int(v)): int(c) for v, c in zip(values, counts, strict=True)}


# --------------------------------------------------------------------------- pieces


def discover(folder: Path, extensions: Sequence[str] = DEFAULT_EXTENSIONS) -> dict[str, Path]:
    """feature name -> path, in order of relative path. Duplicate names raise ValueError."""
    folder = Path(folder)
    exts = [e.lower() for e in extensions]
    found: list[tuple[str, Path]] = []
    for root, _dirs, files in os.walk(folder):
        for fname in files:
            if any(fname.lower().endswith(e) for e in exts):
                path = Path(root) / fname
                found.append((path.relative_to(folder).as_posix(), path))
    found.sort(key=lambda item: item[0])
    out: dict[str, Path] = {}
    for _rel, path in found:
        name = strip_extension(path.name, exts)
        if name in out:
            raise ValueError(f"duplicate feature {name}: {out[name]} and {path}")
        out[name] = path
    return out


def strip_extension(fname: str, lower_exts: Sequence[str]) -> str:
    low = fname.lower()
    best = max((e for e in lower_exts if low.endswith(e)), key=len)
    return fname[: len(fname) - len(best)]


def read_layer(path: Path) -> tuple[np.ndarray, float | None, dict[str, Any]]:
    """Band 1 as float32, the file's nodata tag, and its grid."""
    with rasterio.open(path) as src:
        with np.errstate(over="ignore"):  # beyond float32 -> inf, i.e. nodata
            values = src.read(1).astype(np.float32)
        grid = {
            "crs": src.crs,
            "transform": src.transform,
            "width": src.width,
            "height": src.height,
        }
        return values, src.nodata, grid


def nodata_mask(
    values: np.ndarray,
    file_nodata: float | None,
    nodata_values: Sequence[float],
    use_file_nodata: bool = True,
) -> np.ndarray:
    """True where a float32 value is nodata (NaN, +-inf, a config value, the file tag)."""
    values = np.asarray(values, dtype=np.float32)
    mask = ~np.isfinite(values)
    candidates = list(nodata_values)
    if use_file_nodata and file_nodata is not None:
        candidates.append(file_nodata)
    for v in candidates:
        with np.errstate(over="ignore"):
            v32 = np.float32(v)
        if np.isnan(v32):
            continue  # NaN is already nodata
        mask |= values == v32
    return mask


def scoring_file_features(path: Path) -> list[str] | None:
    """Column names of the sample DataFrame in an AutoML scoring file.

    v1: `input_sample = pd.DataFrame({...})`; v2: `data_sample = PandasParameterType(
    pd.DataFrame({...}))`. The file is parsed with `ast`, never executed.
    """
    tree = ast.parse(Path(path).read_text())
    for target in ("input_sample", "data_sample"):
        for node in ast.walk(tree):
            if not isinstance(node, ast.Assign):
                continue
            if not any(isinstance(t, ast.Name) and t.id == target for t in node.targets):
                continue
            for call in ast.walk(node.value):
                if not isinstance(call, ast.Call):
                    continue
                func = call.func
                fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if fname == "DataFrame" and call.args and isinstance(call.args[0], ast.Dict):
                    return [ast.literal_eval(k) for k in call.args[0].keys if k is not None]
    return None


def model_features(
    model: Any, scoring_file: Path | None = None, features: Sequence[str] | None = None
) -> list[str]:
    if scoring_file is not None:
        names = scoring_file_features(scoring_file)
        if names:
            return names
    names_in = getattr(model, "feature_names_in_", None)
    if names_in is not None:
        return [str(n) for n in names_in]
    if features:
        return list(features)
    raise ValueError("no schema")


# --------------------------------------------------------------------------- the notebook


@dataclass
class Notebook:
    """The notebook's DataFrame of every pixel (nodata filled by the medians where unmasked)
    and its mask: what every reference output is computed from."""

    frame: pd.DataFrame  # every pixel x the model's features, float32
    masked: np.ndarray  # flat bool
    layers: dict[str, LayerStats]
    features: list[str]
    ignored: list[str]
    grid: dict[str, Any]
    n_filled: int

    @property
    def rows(self) -> pd.DataFrame:
        """The unmasked pixels' rows: what the model is given."""
        return self.frame.loc[~self.masked, self.features]

    @property
    def shape(self) -> tuple[int, int]:
        return self.grid["height"], self.grid["width"]


def notebook(
    folder: Path,
    model: Any,
    *,
    extensions: Sequence[str] = DEFAULT_EXTENSIONS,
    nodata_values: Sequence[float] = (),
    use_file_nodata: bool = True,
    threshold: int = 0,
    scoring_file: Path | None = None,
    features: Sequence[str] | None = None,
) -> Notebook:
    files = discover(folder, extensions)
    feats = model_features(model, scoring_file, features)
    missing = [f for f in feats if f not in files]
    if missing:
        raise ValueError(f"missing features {missing}")
    ignored = [name for name in files if name not in feats]

    first_grid = read_layer(next(iter(files.values())))[2]
    columns: dict[str, np.ndarray] = {}
    masks: dict[str, np.ndarray] = {}
    for name in feats:
        values, file_nodata, grid = read_layer(files[name])
        assert grid == first_grid, f"grid of {name} differs"
        columns[name] = values.ravel()
        masks[name] = nodata_mask(values, file_nodata, nodata_values, use_file_nodata).ravel()

    height, width = first_grid["height"], first_grid["width"]
    df = pd.DataFrame(columns, columns=feats)
    count = np.zeros(height * width, dtype=np.int64)
    for name in feats:
        count += masks[name]
    masked = count > threshold

    stats: dict[str, LayerStats] = {}
    n_filled = 0
    for name in feats:
        valid = columns[name][~masks[name]]
        if valid.size == 0:
            raise ValueError(f"layer {name} has no valid pixel")
        median = np.float32(pd.Series(valid.astype(np.float64)).median())
        stats[name] = LayerStats(
            median=median,
            min=np.float32(valid.min()),
            max=np.float32(valid.max()),
            valid_count=int(valid.size),
            nodata_count=int(masks[name].sum()),
        )
        fill = masks[name] & ~masked
        df.loc[fill, name] = median
        n_filled += int(fill.sum())
    return Notebook(df, masked, stats, list(feats), ignored, first_grid, n_filled)


def quiet_predict(predict: Any, rows: pd.DataFrame, **kwargs: Any) -> Any:
    """``predict(rows)`` as the notebook calls it, its known warnings silenced."""
    with np.errstate(over="ignore", invalid="ignore"), warnings.catch_warnings():
        # sklearn sums X to check it (overflows near 3.4e38); a model fitted without
        # names warns about the DataFrame's column names
        warnings.filterwarnings("ignore", message="X has feature names")
        return predict(rows, **kwargs)


def reference_run(
    folder: Path,
    model: Any,
    *,
    classes: Sequence[Any] | None = None,
    out_nodata: int = 255,
    out_dtype: str = "uint8",
    **inputs: Any,
) -> Reference:
    """The classes; ``inputs``: notebook()'s keywords (extensions, nodata_values, ...)."""
    if isinstance(model, (str, Path)):
        model = joblib.load(model)
    nb = notebook(folder, model, **inputs)
    masked = nb.masked
    height, width = nb.shape

    class_list = list(classes) if classes is not None else list(model.classes_)
    lookup = {label: i for i, label in enumerate(class_list)}
    codes = np.full(height * width, out_nodata, dtype=out_dtype)
    if (~masked).any():
        predicted = quiet_predict(model.predict, nb.rows)
        unknown = {p for p in predicted if p not in lookup}
        if unknown:
            raise ValueError(f"labels {unknown} not in {class_list}")
        codes[~masked] = np.array([lookup[p] for p in predicted], dtype=out_dtype)

    return Reference(
        codes=codes.reshape(height, width),
        masked=masked.reshape(height, width),
        layers=nb.layers,
        features=nb.features,
        ignored=nb.ignored,
        classes=class_list,
        out_nodata=out_nodata,
        crs=nb.grid["crs"],
        transform=nb.grid["transform"],
        width=width,
        height=height,
        n_filled=nb.n_filled,
    )


def reference_from_config(config: Mapping[str, Any], base_dir: Path | None = None) -> Reference:
    """Run the reference on a config dict (same structure as the tool's YAML)."""
    base = Path(base_dir) if base_dir is not None else Path.cwd()

    def resolve(p: Any) -> Path | None:
        if p is None:
            return None
        p = Path(p)
        return p if p.is_absolute() else base / p

    rasters = config["rasters"]
    nodata = config.get("nodata", {}) or {}
    model_cfg = config["model"]
    output = config.get("output", {}) or {}
    folder = resolve(rasters["folder"])
    model_path = resolve(model_cfg["path"])
    assert folder is not None and model_path is not None
    return reference_run(
        folder,
        joblib.load(model_path),
        extensions=rasters.get("extensions") or DEFAULT_EXTENSIONS,
        nodata_values=nodata.get("values", DEFAULT_NODATA_VALUES) or (),
        use_file_nodata=nodata.get("use_file_nodata", True),
        threshold=nodata.get("threshold", 0),
        scoring_file=resolve(model_cfg.get("scoring_file")),
        features=model_cfg.get("features"),
        classes=model_cfg.get("classes"),
        out_nodata=output.get("nodata", 255),
        out_dtype=output.get("dtype", "uint8"),
    )
