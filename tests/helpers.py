"""Builders for the tests: small GeoTIFF stacks, tiny sklearn models, configs, CLI runs.

Nothing here imports the package under test, so the builders (and the reference) can be
used before the package exists.
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import rasterio
import yaml
from rasterio.crs import CRS
from rasterio.transform import Affine, from_origin
from reference import nodata_mask
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

DEFAULT_CRS = "EPSG:32633"
DEFAULT_TRANSFORM: Affine = from_origin(500000.0, 6000000.0, 80.0, 80.0)
AZURE_NODATA = -3.3999999521443642e38  # float32(-3.4e38), Azure/ArcGIS style nodata

REPO_ROOT = Path(__file__).resolve().parent.parent

# A layout is ("tiled", tile_size) or ("striped", rows_per_strip).
Layout = tuple[str, int]


# --------------------------------------------------------------------------- rasters


def write_raster(
    path: Path,
    data: np.ndarray,
    *,
    dtype: str | None = None,
    nodata: float | None = None,
    layout: Layout = ("tiled", 16),
    crs: str | CRS = DEFAULT_CRS,
    transform: Affine = DEFAULT_TRANSFORM,
    compress: str | None = "lzw",
) -> Path:
    """Write a single-band GeoTIFF (creating parent folders) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.asarray(data)
    if data.ndim != 2:
        raise ValueError("data must be 2-D")
    dtype = dtype or data.dtype.name
    height, width = data.shape
    kind, size = layout
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": dtype,
        "crs": crs,
        "transform": transform,
    }
    if compress:
        profile["compress"] = compress
    if nodata is not None:
        profile["nodata"] = nodata
    if kind == "tiled":
        if size % 16:
            raise ValueError("GeoTIFF tiles must be multiples of 16")
        profile.update(tiled=True, blockxsize=size, blockysize=size)
    elif kind == "striped":
        profile.update(tiled=False, blockysize=max(1, size))
    else:
        raise ValueError(f"unknown layout {kind!r}")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(dtype, copy=False), 1)
    return path


def write_multiband(
    path: Path,
    bands: list[np.ndarray],
    *,
    descriptions: list[str | None] | None = None,
    nodata: float | None = None,
    crs: str | None = "EPSG:32633",
    transform: Any = DEFAULT_TRANSFORM,
    interleave: str = "pixel",
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff",
        "width": bands[0].shape[1],
        "height": bands[0].shape[0],
        "count": len(bands),
        "dtype": bands[0].dtype.name,
        "crs": crs,
        "transform": transform,
        "tiled": True,
        "blockxsize": 16,
        "blockysize": 16,
        "compress": "lzw",
        "interleave": interleave,
    }
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as ds:
        for i, band in enumerate(bands, 1):
            ds.write(band, i)
            if descriptions and descriptions[i - 1]:
                ds.set_band_description(i, descriptions[i - 1])
    return path


def write_legend_csv(map_path: Path, names: Mapping[int, str]) -> Path:
    """The ``<map>.legend.csv`` a run writes beside its map (code, label, colour, count)."""
    path = Path(map_path).with_name(Path(map_path).stem + ".legend.csv")
    lines = ["code,label,colour,pixel_count"]
    lines += [f"{code},{label},#000000,0" for code, label in names.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def pixel_centre(transform: Affine, row: Any, col: Any) -> tuple[Any, Any]:
    """The coordinates of the centre of pixel (row, col) of a north-up grid."""
    return transform.c + (col + 0.5) * transform.a, transform.f + (row + 0.5) * transform.e


# Olofsson et al. (2014), sec. 5: four classes of a change map, mapped pixels (30 m), and the
# sample counts of their Table 8 [map][reference]
OLOFSSON_NAMES = {1: "Deforestation", 2: "Forest gain", 3: "Stable forest", 4: "Stable non-forest"}
OLOFSSON_PIXELS = (200_000, 150_000, 3_200_000, 6_450_000)
OLOFSSON_COUNTS = ((66, 0, 5, 4), (0, 55, 8, 12), (1, 0, 153, 11), (2, 1, 9, 313))
OLOFSSON_TRANSFORM: Affine = from_origin(500_000.0, 6_000_000.0, 30.0, 30.0)


def olofsson_map(folder: Path, width: int = 5000) -> tuple[Path, np.ndarray]:
    """The paper's map: its classes' pixels as whole rows of ``width`` pixels (10 million in
    all), then 10 rows of nodata (255); with a legend naming the classes."""
    rows = [n // width for n in OLOFSSON_PIXELS]
    bands = np.repeat(np.arange(1, 5), rows)
    data = np.repeat(np.append(bands, [255] * 10)[:, None], width, axis=1).astype(np.uint8)
    path = write_raster(
        Path(folder) / "change.tif",
        data,
        nodata=255,
        layout=("tiled", 256),
        transform=OLOFSSON_TRANSFORM,
    )
    write_legend_csv(path, OLOFSSON_NAMES)
    return path, data


def corrupt_tile(path: Path, row: int, col: int) -> None:
    """Overwrite tile (row, col) of band 1 with bytes LZW cannot decode; size and mtime kept,
    so the file looks unchanged (and the statistics cache still trusts it)."""
    st = path.stat()
    with rasterio.open(path) as ds:
        offset = int(ds.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=1))
        size = int(ds.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=1))
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xff" * size)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size


def read_output(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Band 1 of a raster plus the profile facts the tests check."""
    with rasterio.open(path) as src:
        arr = src.read(1)
        info = {
            "crs": src.crs,
            "transform": src.transform,
            "width": src.width,
            "height": src.height,
            "count": src.count,
            "dtype": src.dtypes[0],
            "nodata": src.nodata,
            "compress": (src.compression.value if src.compression else None),
        }
    info["tiled"] = tiff_is_tiled(path)
    return arr, info


def tiff_is_tiled(path: Path) -> bool:
    """True when the first IFD of a (Big)TIFF has a TileWidth tag (322)."""
    with open(path, "rb") as fh:
        head = fh.read(16)
        order = {b"II": "<", b"MM": ">"}[head[:2]]
        magic = struct.unpack(order + "H", head[2:4])[0]
        if magic == 42:
            (ifd,) = struct.unpack(order + "I", head[4:8])
            fh.seek(ifd)
            (n,) = struct.unpack(order + "H", fh.read(2))
            entry, tag_fmt = 12, "H"
        elif magic == 43:
            (ifd,) = struct.unpack(order + "Q", head[8:16])
            fh.seek(ifd)
            (n,) = struct.unpack(order + "Q", fh.read(8))
            entry, tag_fmt = 20, "H"
        else:
            raise ValueError(f"{path} is not a TIFF")
        entries = fh.read(n * entry)
    tags = {struct.unpack(order + tag_fmt, entries[i * entry : i * entry + 2])[0] for i in range(n)}
    return 322 in tags


# --------------------------------------------------------------------------- models


def train_model(
    features: Sequence[str],
    pools: Mapping[str, np.ndarray],
    labels: Sequence[Any],
    *,
    kind: str = "tree",
    seed: int = 0,
    n_rows: int = 160,
    with_names: bool = True,
    label_dtype: str = "auto",
) -> Any:
    """A tiny classifier trained on values drawn from `pools` (one 1-D array per feature).

    Trained on a DataFrame (so `feature_names_in_` exists) unless `with_names` is False.
    Every label appears at least once in the training set.
    """
    rng = np.random.default_rng(seed)
    cols = {}
    for name in features:
        pool = np.asarray(pools[name], dtype=np.float32)
        if pool.size == 0:
            pool = np.zeros(1, np.float32)
        # float32 values held as float64: sklearn's tree fit (with pandas 3) fails on a
        # read-only float32 column whose sum overflows, e.g. values near 3.4e38
        cols[name] = rng.choice(pool, n_rows).astype(np.float32).astype(np.float64)
    df = pd.DataFrame(cols, columns=list(features))
    y_idx = rng.integers(0, len(labels), n_rows)
    y_idx[: len(labels)] = np.arange(len(labels))
    y = label_array(np.array(list(labels), dtype=object)[y_idx], label_dtype)
    model = make_estimator(kind, seed)
    with np.errstate(over="ignore", invalid="ignore"):  # sums of values near float32's max
        model.fit(df if with_names else df.to_numpy(), y)
    return model


def label_array(y: np.ndarray, label_dtype: str = "auto") -> np.ndarray:
    """Training labels: "auto" = int64 / float64 / fixed-width str by the labels' type;
    "object" = an object array of text labels (what pandas and AutoML usually hand to
    sklearn)."""
    values = list(y)
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        out = np.asarray(values, dtype=np.int64)
    elif all(isinstance(v, (int, float, np.number)) for v in values):
        out = np.asarray(values, dtype=np.float64)
    else:
        out = np.asarray([str(v) for v in values])
    # sklearn rejects object arrays of numbers ("unknown" target type): text only
    return out.astype(object) if label_dtype == "object" and out.dtype.kind == "U" else out


def make_estimator(kind: str, seed: int) -> Any:
    rs = seed % (2**31)
    if kind == "tree":
        return DecisionTreeClassifier(max_depth=5, random_state=rs)
    if kind == "forest":
        return RandomForestClassifier(n_estimators=3, max_depth=4, random_state=rs)
    if kind == "pipeline":
        return make_pipeline(StandardScaler(), DecisionTreeClassifier(max_depth=4, random_state=rs))
    raise ValueError(kind)


def threshold_model(
    feature: str,
    features: Sequence[str],
    cuts: Sequence[tuple[float, Any]],
    label_dtype: str = "auto",
) -> Any:
    """A DecisionTree that predicts label_i when `feature` < bound_i (first matching bound).

    `cuts` is [(upper_bound, label), ...] in increasing bound order; the last bound may be inf.
    Split points land within 0.01 of each bound. Other features are constant (never split on).
    """
    xs: list[np.ndarray] = []
    ys: list[Any] = []
    lower = -1e4
    for bound, label in cuts:
        hi = min(bound, 1e6)
        pts = np.concatenate([np.linspace(lower, hi, 200, endpoint=False), [hi - 0.01]])
        xs.append(pts)
        ys += [label] * len(pts)
        lower = hi
    x = np.concatenate(xs).astype(np.float32)
    df = pd.DataFrame({name: np.zeros(len(x), np.float32) for name in features})
    df[feature] = x
    y = label_array(np.asarray(ys, dtype=object), label_dtype)
    model = DecisionTreeClassifier(random_state=0)
    model.fit(df, y)
    return model


class Unlisted:
    """A fitted classifier that does not list its classes (no ``classes_``), as some wrapped
    or hand-made models do: its labels are only known when it predicts them."""

    def __init__(self, model: Any):
        self.model = model
        self.feature_names_in_ = model.feature_names_in_

    def predict(self, x: Any) -> Any:
        return self.model.predict(x)


class PausingModel:
    """A classifier that waits to be interrupted: at its ``after``-th predict call in a
    process it leaves the file ``marker`` and sleeps (the test stops the run meanwhile). Once
    the marker exists it predicts at once, so a resumed run and the reference go straight
    through. Pickled by reference to this module: a CLI subprocess needs tests/ on its path."""

    def __init__(self, model: Any, marker: Path, after: int = 2, wait: float = 300.0):
        self.model = model
        self.marker = Path(marker)
        self.after = after
        self.wait = wait
        self.calls = 0
        self.feature_names_in_ = model.feature_names_in_
        self.classes_ = model.classes_

    def predict(self, x: Any) -> Any:
        self.calls += 1
        if self.calls >= self.after and not self.marker.exists():
            self.marker.touch()
            # short sleeps: a signal handled by another thread still stops this one at once
            until = time.monotonic() + self.wait
            while time.monotonic() < until:
                time.sleep(0.05)
        return self.model.predict(x)


def signal_state(pid: int) -> str:
    """A process's signal masks and its threads' states (/proc), for a test whose process did
    not stop on a signal: blocked, ignored or pending says why."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        threads = sorted(Path(f"/proc/{pid}/task").iterdir())
        states = [(t / "stat").read_text().split(")")[-1].split()[0] for t in threads]
    except OSError as exc:
        return f"no /proc state ({exc})"
    keys = ("SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")
    masks = [line for line in status if line.split(":")[0] in keys]
    return "; ".join([*masks, f"threads {len(threads)} states {''.join(states)}"])


def save_model(model: Any, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    return path


def native(value: Any) -> Any:
    """numpy scalar -> plain Python (for YAML / config dicts)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


# --------------------------------------------------------------------------- configs


def make_config(
    folder: Path | str,
    model_path: Path | str,
    output_path: Path | str,
    *,
    rasters: Mapping[str, Any] | None = None,
    nodata: Mapping[str, Any] | None = None,
    model: Mapping[str, Any] | None = None,
    output: Mapping[str, Any] | None = None,
    processing: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "rasters": {"folder": str(folder), **(rasters or {})},
        "model": {"path": str(model_path), **(model or {})},
        "output": {"path": str(output_path), **(output or {})},
    }
    if nodata:
        cfg["nodata"] = dict(nodata)
    if processing:
        cfg["processing"] = dict(processing)
    return cfg


def write_yaml(path: Path, config: Mapping[str, Any]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(_plain(config), sort_keys=False))
    return path


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return native(obj)


def report_path_for(output: Path) -> Path:
    output = Path(output)
    return output.with_name(output.stem + ".report.json")


def load_report(output: Path) -> dict[str, Any]:
    return json.loads(report_path_for(output).read_text())


# --------------------------------------------------------------------------- CLI


def package_root() -> Path:
    """The folder holding the `windowed_classify` this test process imports (so the CLI
    subprocess runs the same code)."""
    spec = importlib.util.find_spec("windowed_classify")
    if spec is None or spec.origin is None:
        return REPO_ROOT
    return Path(spec.origin).resolve().parent.parent


def run_cli(
    *args: str | os.PathLike[str],
    cwd: Path | None = None,
    timeout: float = 300,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.setdefault("PYTHONWARNINGS", "default")
    paths = (str(package_root()), env.get("PYTHONPATH", ""))
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return subprocess.run(
        [sys.executable, "-m", "windowed_classify", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=preexec_fn,
    )


def run_main(
    *args: str | os.PathLike[str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``cli.main(args)`` in this process, as ``run_cli`` would run it in a subprocess: the
    exit code and what it printed (a user error's one line, the logging). Much faster than a
    subprocess; keep ``run_cli`` for what needs a real process (signals, interpreter exit)."""
    import contextlib
    import io
    import logging
    import signal

    from windowed_classify import cli

    out, err = io.StringIO(), io.StringIO()
    argv = [str(a) for a in args]
    sigterm = signal.getsignal(signal.SIGTERM)  # main() installs its own: put ours back
    logger = logging.getLogger("windowed_classify")  # main() sets it up for the terminal
    saved = (logger.handlers[:], logger.level, logger.propagate)
    here = Path.cwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(argv)
            except SystemExit as exc:  # argparse: --help, usage errors
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        os.chdir(here)
        signal.signal(signal.SIGTERM, sigterm)
        logger.handlers[:], logger.level, logger.propagate = saved
    return subprocess.CompletedProcess(
        ["windowed_classify", *argv], code, out.getvalue(), err.getvalue()
    )


# --------------------------------------------------------------------------- stacks


@dataclass
class LayerSpec:
    """One covariate raster of a generated stack."""

    name: str
    data: np.ndarray  # values as written (in `dtype`)
    dtype: str = "float32"
    file_nodata: float | None = None
    layout: Layout = ("tiled", 16)
    subdir: str = ""
    ext: str = ".tif"

    @property
    def relpath(self) -> str:
        return (
            os.path.join(self.subdir, self.name + self.ext) if self.subdir else self.name + self.ext
        )


@dataclass
class Stack:
    folder: Path
    layers: list[LayerSpec] = field(default_factory=list)

    def write(self) -> dict[str, Path]:
        paths = {}
        for spec in self.layers:
            paths[spec.name] = write_raster(
                self.folder / spec.relpath,
                spec.data,
                dtype=spec.dtype,
                nodata=spec.file_nodata,
                layout=spec.layout,
            )
        return paths


def valid_pool(
    spec: LayerSpec, nodata_values: Iterable[float], use_file_nodata: bool
) -> np.ndarray:
    """The valid values of a layer under a nodata config (1-D float32)."""
    values = spec.data.astype(np.float32)
    mask = nodata_mask(values, spec.file_nodata, list(nodata_values), use_file_nodata)
    return values[~mask]


STACK_NAMES = ("elev", "slope", "ndvi")  # simple_stack's layers, in order


def simple_stack(
    folder: Path,
    *,
    height: int = 37,
    width: int = 45,
    seed: int = 0,
    names: Sequence[str] = STACK_NAMES,
    nodata_fraction: float = 0.1,
    file_nodata: float = -9999.0,
    layout: Layout = ("tiled", 16),
) -> Stack:
    """A float32 stack with some file-tagged nodata, NaN and a few ties."""
    rng = np.random.default_rng(seed)
    stack = Stack(folder)
    for i, name in enumerate(names):
        data = np.round(rng.normal(100 * (i + 1), 30, (height, width)), 1).astype(np.float32)
        holes = rng.random((height, width)) < nodata_fraction
        data[holes] = file_nodata
        data[rng.random((height, width)) < nodata_fraction / 3] = np.nan
        stack.layers.append(LayerSpec(name, data, "float32", file_nodata, layout))
    return stack


def training_rows(stack: Stack, n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Regression training rows: values drawn from a simple_stack's valid values, and a smooth
    target of elev, slope and ndvi with noise."""
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {s.name: rng.choice(valid_pool(s, [], True), n).astype(np.float64) for s in stack.layers}
    )
    y = 0.05 * x["elev"] + np.sin(x["slope"] / 25.0) * 3 - 0.01 * x["ndvi"] + rng.normal(0, 1, n)
    return x, y.to_numpy()


@dataclass
class Case:
    """A ready-to-run setup: a written stack, a saved model and a config dict."""

    root: Path
    stack: Stack
    model: Any
    model_path: Path
    output: Path
    config: dict[str, Any]

    @property
    def folder(self) -> Path:
        return self.stack.folder

    def write_config(
        self, name: str = "config.yaml", config: Mapping[str, Any] | None = None
    ) -> Path:
        return write_yaml(self.root / name, self.config if config is None else config)


def build_case(
    root: Path,
    *,
    names: Sequence[str] = ("elev", "slope", "ndvi"),
    model_features_: Sequence[str] | None = None,
    labels: Sequence[Any] = ("forest", "water", "urban"),
    kind: str = "tree",
    height: int = 37,
    width: int = 45,
    seed: int = 0,
    layout: Layout = ("tiled", 16),
    nodata_values: Sequence[float] = (AZURE_NODATA,),
    with_names: bool = True,
    nodata_fraction: float = 0.1,
) -> Case:
    root = Path(root)
    stack = simple_stack(
        root / "covariates",
        height=height,
        width=width,
        seed=seed,
        names=names,
        layout=layout,
        nodata_fraction=nodata_fraction,
    )
    stack.write()
    feats = list(model_features_) if model_features_ is not None else list(names)
    pools = {s.name: valid_pool(s, nodata_values, True) for s in stack.layers}
    model = train_model(feats, pools, labels, kind=kind, seed=seed, with_names=with_names)
    model_path = save_model(model, root / "model.pkl")
    output = root / "out" / "prediction.tif"
    output.parent.mkdir(parents=True, exist_ok=True)
    config = make_config(stack.folder, model_path, output, nodata={"values": list(nodata_values)})
    return Case(root, stack, model, model_path, output, config)
