"""YAML -> one typed, validated Config: paths resolved, unknown keys rejected.

Every key is written once, as a dataclass field made by ``key()``: its checker, its default as
one writes it in YAML, and its help. The validation, the unknown-key messages, ``SCHEMA`` and
the generated reference (docs/configuration.md and configs/example.yaml, written by
scripts/config_docs.py; ``example-config`` prints the latter) all come
from those fields. Every problem is a ConfigError whose message names the key at fault.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from . import config_values as v
from .config_values import Validator
from .errors import ConfigError

ARCGIS_FLOAT32_NODATA = -3.3999999521443642e38
CODE_DTYPES = ("uint8", "uint16", "int16", "uint32", "int32")
FLOAT_DTYPES = ("float32", "float64")
TASKS = ("auto", "classification", "regression")
CLASS_NODATA = 255  # output.nodata's default for classes
FLOAT_NODATA = -9999.0  # for a regression, and always for spread, quantiles and DI
COMPRESSIONS = ("lzw", "deflate", "zstd", "lzma", "packbits", "none")
REQUIRED = object()  # a key without a default
COG_MEDIA_TYPE = "image/tiff; application=geotiff; profile=cloud-optimized"


def key(
    check: Validator,
    default: Any = REQUIRED,
    *,
    help: str,
    details: str = "",
    example: Any = None,
    shown: str | None = None,
    commented: bool = False,
) -> Any:
    """A config key: ``check`` turns the YAML value into the typed one; ``default`` is written
    as in YAML (the field's default is ``check(default)``); ``help`` is one line for the
    reference table, ``details`` more lines for the reference and example.yaml; ``example`` is
    the value example.yaml shows when it is not the default (``commented``: shown as a
    comment); ``shown`` the reference's
    text for the default."""
    meta = {
        "check": check,
        "default": default,
        "help": help,
        "details": details,
        "example": example,
        "shown": shown,
        "commented": commented,
    }
    if default is REQUIRED:
        return field(metadata=meta)
    typed = check(default, "", Path("."))
    if isinstance(typed, dict | list):
        return field(default_factory=lambda: type(typed)(typed), metadata=meta)
    return field(default=typed, metadata=meta)


@dataclass(frozen=True)
class RastersConfig:
    folder: Path | None = key(
        v.to_opt_path,
        None,
        help="folder searched recursively for layers",
        details="Every band of every file whose name ends with one of the extensions "
        "(case-insensitive) is a layer. Layers are sorted by relative path; a single-band "
        "file's feature name is the file name without its extension (Elev_dem.tif -> "
        "Elev_dem); see rasters.band_names for multi-band files. The model's layers must "
        "share one grid (see rasters.align); layers it does not use never matter.",
        example="covariates",
        shown="one of folder/files/stac",
    )
    files: tuple[tuple[str, Path | str, int | None], ...] | None = key(  # (name, path, band)
        v.to_files,
        None,
        help="feature name -> path or GDAL URL (`/vsicurl/https://...`, `/vsis3/...`), "
        "in this order",
        details="Instead of folder. Dask workers must be able to read the same paths.",
        example={
            "Elev_dem": "/shared/dem.tif",
            "Veg_ndvi": "/vsicurl/https://example.org/ndvi.tif",
        },
        shown="one of folder/files/stac",
        commented=True,
    )
    stac: tuple[Path | str, ...] | None = key(
        v.to_sources,
        None,
        help="a STAC ItemCollection, or a list of STAC Item files (paths or URLs): each asset "
        "of a `media_types` type is a layer `<item id>_<asset key>`",
        details="Instead of folder or files; needs the `stac` extra (pystac). With one item, a "
        "layer is named by its asset key alone. Asset hrefs relative to their item resolve "
        "as STAC says; https:// hrefs are read with /vsicurl/, s3:// with /vsis3/. Band names "
        "of a multi-band asset follow the rules of multi-band files.",
        example="items.json",
        shown="one of folder/files/stac",
        commented=True,
    )
    media_types: tuple[str, ...] = key(
        v.to_media_types,
        [COG_MEDIA_TYPE],
        help="with `stac`: the media types of the assets that are layers",
    )
    extensions: tuple[str, ...] = key(
        v.to_extensions,
        [".tif", ".tiff", ".vrt"],
        help="file name endings that are layers (case-insensitive)",
    )
    band_names: str = key(
        v.one_of(("auto", "stem")),
        "auto",
        help="how the bands of a multi-band file are named: `auto` (the band's description "
        "when set and unique in its file, else `<stem>_<N>`) or `stem` (`<stem>_<description>`, "
        "else `<stem>_<N>`)",
        details="A single-band file's layer is always named by its stem (the file name without "
        "its extension; the key of a rasters.files entry). Use stem for files of several dates "
        "whose bands carry the same descriptions (red, nir, ...), as most exporters write them.",
    )
    align: bool = key(
        v.to_bool,
        False,
        help='warp layers off the reference grid onto it (see "Misfit grids")',
        details="Layers off the grid: false = an error naming what differs; true = warp them "
        "onto the reference grid as they are read, with `resampling`; nodata never enters a "
        "kernel.",
    )
    reference: Path | None = key(
        v.to_opt_path,
        None,
        help="with `align`: a raster whose grid is the reference (default: the grid most model "
        "layers share)",
    )
    resampling: Mapping[str, str] = key(
        v.to_resampling,
        "nearest",
        help="with `align`: a method, or `{default: ..., <feature>: ...}`",
    )

    @property
    def where(self) -> str:
        """Where the layers come from, for messages: "under <folder>", "in rasters.files"."""
        if self.folder is not None:
            return f"under {self.folder}"
        return "in rasters.files" if self.files is not None else "in rasters.stac"

    def resampling_for(self, feature: str) -> str:
        """The warp resampling method of one layer: its own entry, else the default."""
        return self.resampling.get(feature, self.resampling.get("default", "nearest"))


@dataclass(frozen=True)
class NodataConfig:
    values: tuple[float, ...] = key(
        v.to_numbers,
        [ARCGIS_FLOAT32_NODATA],
        help="values that mean nodata (compared as float32)",
        details="A pixel value is nodata when it is NaN or +-inf, equals one of these values "
        "(compared after casting both to float32), or equals the file's own nodata tag (if "
        "use_file_nodata). The default is the ArcGIS float32 nodata value.",
    )
    use_file_nodata: bool = key(v.to_bool, True, help="a file's own nodata tag is nodata too")
    threshold: int = key(
        v.to_int(0),
        0,
        help="mask a pixel when more than this many layers are nodata",
        details="A masked pixel gets output.nodata and is never given to the model. 0: any "
        "nodata masks the pixel. Other nodata values are filled with their layer's global "
        "median.",
    )


@dataclass(frozen=True)
class ModelConfig:
    path: Path = key(
        v.to_path,
        help="joblib/pickle model, or an ONNX model (`.onnx`)",
        details="A scikit-learn estimator or an Azure AutoML model.pkl. Loading a pickle runs "
        "code from it: only load models you trust.",
        example="model.pkl",
        shown="required",
    )
    scoring_file: Path | None = key(
        v.to_opt_path,
        None,
        help="Azure AutoML scoring file giving the features",
        details="scoring_file_v_1_0_0.py: its input_sample gives the features and their "
        "order. It is parsed, never executed.",
    )
    features: tuple[str, ...] | None = key(
        v.to_names,
        None,
        help="features in the model's order",
        details="When neither the scoring file nor the model's feature_names_in_ gives them. "
        "When several sources exist they must agree.",
    )
    classes: tuple[Any, ...] | None = key(
        v.to_labels,
        None,
        help="label order -> codes 0..n-1 (default: model's `classes_`)",
    )
    task: str = key(
        v.one_of(TASKS),
        "auto",
        help='`auto`, `classification` or `regression` (see "Regression and uncertainty")',
        details="auto: a regressor (scikit-learn's is_regressor, an AutoML regression pipeline, "
        "a LightGBM/XGBoost regressor, an ONNX model with only a float output) is a regression, "
        "anything else a classification.",
    )


@dataclass(frozen=True)
class OutputConfig:
    path: Path = key(
        v.to_path,
        help="the classified (or, for a regression, predicted) GeoTIFF",
        details="Written under a temporary name (.prediction.partial.tif) and renamed into "
        "place only when complete. The JSON report is written beside it "
        "(prediction.report.json), and the style sidecars: prediction.qml (QGIS style, applied "
        "automatically), a legend CSV and prediction.tif.aux.xml (category names + attribute "
        "table; for a regression a colour ramp and the statistics instead).",
        example="prediction.tif",
        shown="required",
    )
    dtype: str | None = key(
        v.opt_one_of(CODE_DTYPES + FLOAT_DTYPES),
        None,
        help="classes: " + ", ".join(CODE_DTYPES) + "; regression: float32, float64",
        shown="`uint8` (classes), `float32` (regression)",
    )
    nodata: float | None = key(
        v.to_opt_nodata,
        None,
        help="value of masked pixels; must not collide with a class code (regression: any "
        "number, or nan)",
        shown="`255` (classes), `-9999` (regression)",
    )
    compress: str = key(v.one_of(COMPRESSIONS), "lzw", help=", ".join(COMPRESSIONS))
    codes: str = key(
        v.one_of(("index", "label")),
        "index",
        help="`index`: a class's code is its place in the legend (0..n-1, the notebook's rule); "
        "`label`: integer labels are written as themselves (soil class 3 -> 3)",
    )
    overwrite: bool = key(v.to_bool, False, help="replace an existing output")
    probabilities: Path | None = key(
        v.to_opt_path,
        None,
        help="GeoTIFF of one probability band per class",
        example="probabilities.tif",
        commented=True,
    )
    probabilities_dtype: str = key(
        v.one_of(("uint8", "float32")),
        "uint8",
        help="`uint8` (percent, 255 masked) or `float32` (0-1, NaN masked); also for "
        "confidence, entropy and margin",
    )
    confidence: Path | None = key(
        v.to_opt_path,
        None,
        help="GeoTIFF of the highest class probability",
        example="confidence.tif",
        commented=True,
    )
    entropy: Path | None = key(
        v.to_opt_path,
        None,
        help="GeoTIFF of the class probabilities' Shannon entropy, 0-1 (divided by log K)",
        example="entropy.tif",
        commented=True,
    )
    margin: Path | None = key(
        v.to_opt_path,
        None,
        help="GeoTIFF of the top class probability minus the second (1 - margin: the "
        "confusion index)",
        example="margin.tif",
        commented=True,
    )
    spread: Path | None = key(
        v.to_opt_path,
        None,
        help="regression: GeoTIFF of the standard deviation of a forest's trees' predictions",
        example="spread.tif",
        commented=True,
    )
    quantiles: Mapping[str, Any] | None = key(
        v.to_quantiles,
        None,
        help="regression: `{path: q.tif, levels: [0.05, 0.5, 0.95]}`, one band per level of a "
        "quantile regression forest",
        example={"path": "quantiles.tif", "levels": [0.05, 0.5, 0.95]},
        commented=True,
    )
    di: Path | None = key(
        v.to_opt_path,
        None,
        help="GeoTIFF of the dissimilarity index (needs the `aoa` section)",
        example="di.tif",
        commented=True,
    )
    aoa: Path | None = key(
        v.to_opt_path,
        None,
        help="GeoTIFF of the area of applicability: 1 inside, 0 outside, 255 masked (needs "
        "the `aoa` section)",
        example="aoa.tif",
        commented=True,
    )
    cog: bool = key(v.to_bool, False, help="write Cloud Optimized GeoTIFFs (internal overviews)")
    preview: Path | None = key(
        v.to_opt_path,
        None,
        help="a quick-look PNG of the classes or the predicted values (needs the `preview` extra)",
        example="preview.png",
        commented=True,
    )

    @property
    def quantiles_path(self) -> Path | None:
        return None if self.quantiles is None else self.quantiles["path"]

    @property
    def named_rasters(self) -> dict[str, Path]:
        """Every GeoTIFF this run writes, by its key: the classes (``path``) first."""
        named = {key: getattr(self, key) for key in EXTRA_RASTERS}
        named["quantiles"] = self.quantiles_path
        return {"path": self.path} | {k: p for k, p in named.items() if p is not None}

    @property
    def rasters(self) -> list[Path]:
        """Every GeoTIFF this run writes: the classes first."""
        return list(self.named_rasters.values())

    @property
    def files(self) -> list[Path]:
        """Every file a run is asked for (rasters and preview), to check before the run."""
        return [*self.rasters, *([self.preview] if self.preview is not None else [])]

    @property
    def asked(self) -> list[str]:
        """The optional rasters asked for, by key, in the order of the keys."""
        return [k for k in self.named_rasters if k != "path"]

    def for_task(self, task: str) -> OutputConfig:
        """The dtype and nodata a task writes (its defaults filled in), checked: a
        ConfigError naming the key when they do not suit the task."""
        regression = task == "regression"
        dtype = self.dtype or ("float32" if regression else "uint8")
        nodata = self.nodata
        if nodata is None:
            nodata = FLOAT_NODATA if regression else CLASS_NODATA
        if regression and dtype not in FLOAT_DTYPES:
            raise ConfigError(
                f"config key 'output.dtype': a regression writes float32 or float64, not {dtype}"
            )
        if not regression and dtype not in CODE_DTYPES:
            raise ConfigError(
                f"config key 'output.dtype': {dtype} is for a regression; class codes are "
                "written as " + ", ".join(CODE_DTYPES)
            )
        nodata = _float_nodata(nodata, dtype) if regression else _code_nodata(nodata, dtype)
        return replace(self, dtype=dtype, nodata=nodata)


# The optional rasters, in the order they are written and listed (quantiles by its path).
EXTRA_RASTERS = (
    "probabilities",
    "confidence",
    "entropy",
    "margin",
    "spread",
    "quantiles",
    "di",
    "aoa",
)


def _code_nodata(nodata: float, dtype: str) -> int:
    info = np.iinfo(dtype)
    if nodata != nodata or not float(nodata).is_integer() or not info.min <= nodata <= info.max:
        raise ConfigError(
            f"config key 'output.nodata': {nodata} does not fit output.dtype {dtype} "
            f"({info.min}..{info.max})"
        )
    return int(nodata)


def _float_nodata(nodata: float, dtype: str) -> float:
    """The nodata value as the raster holds it: a value float32 cannot hold exactly is an
    error (its tag would not match its pixels)."""
    value = float(nodata)
    if value != value:
        return value
    with np.errstate(over="ignore"):
        held = float(np.dtype(dtype).type(value))
    if held != value:
        raise ConfigError(
            f"config key 'output.nodata': {nodata!r} is not exactly a {dtype} value (it would "
            f"be stored as {held!r}); use {held!r} or a round number such as -9999"
        )
    return value


@dataclass(frozen=True)
class AoaConfig:
    training: Path = key(
        v.to_path,
        help="the training rows: the CSV `sample` writes, or any CSV/GeoPackage with one "
        "column per model feature",
        details="Rows with an empty value in a model feature are dropped (a warning says how "
        "many).",
        example="plots_covariates.csv",
        shown="required",
    )
    weights: str | Mapping[str, float] | None = key(
        v.to_weights,
        None,
        help="`importance` (the model's feature_importances_), `equal`, or `{feature: weight}`",
        shown="importance when the model has them, else equal",
    )
    folds: str | Mapping[str, int] = key(
        v.to_folds,
        "none",
        help="`none`, a column of the table holding each row's cross-validation fold, or "
        "`{random: K}`",
    )
    seed: int = key(v.to_int(0), 0, help="seed of `folds: {random: K}`")


@dataclass(frozen=True)
class ProcessingConfig:
    memory_mb: int = key(
        v.to_int(1),
        256,
        help="working-memory budget (windows + GDAL block cache)",
        details="Peak memory is about the interpreter and model (per worker) plus this budget.",
    )
    workers: int | None = key(
        v.to_opt_int(1), None, help="worker count; 1 = in-process", shown="all cores"
    )
    engine: str = key(
        v.to_engine,
        "auto",
        help="`auto` (threads, unless a probe finds the model's predict holds the GIL), "
        "`threads` (= `local`: one model, least memory), `processes`, or `dask` (see "
        '"Running on a Dask cluster")',
        details="workers > 1: threads share one model in one process (least memory; right for "
        "models whose predict releases the GIL: scikit-learn trees, LightGBM, XGBoost, ONNX, "
        "Azure AutoML ensembles of them); processes load the model once per worker (for "
        "pure-Python models), each worker ~300 MB more. auto times predict on one thread and "
        "on two before the run and says what it chose in the report.",
    )
    scheduler: str = key(
        v.to_scheduler,
        "local",
        help="with `dask`: a scheduler address (`tcp://host:8786`), or `local` to start a "
        "LocalCluster of `processing.workers` processes",
    )
    read_ahead: int = key(
        v.to_int(0),
        64,
        help="remote layers: files read at once per process, apart from the workers; 0 = one "
        "after another",
        details="A window's remote files (/vsicurl/, /vsis3/, URLs, STAC assets) are opened and "
        "read at once by this many I/O threads in each process (GDAL releases the GIL while it "
        "reads); local files are read by the workers as always. See docs/remote.md.",
    )
    stats_cache: bool = key(v.to_bool, True, help="reuse pass-1 statistics of unchanged files")
    cache_dir: Path | None = key(
        v.to_opt_path,
        None,
        help="where the statistics cache lives",
        details="null = $XDG_CACHE_HOME/windowed_classify/stats (~/.cache/...).",
        shown="user cache",
    )
    checkpoint_seconds: float = key(
        v.to_seconds, 10.0, help="how often pass 2 makes its progress resumable"
    )


SECTIONS: dict[str, type] = {
    "rasters": RastersConfig,
    "nodata": NodataConfig,
    "model": ModelConfig,
    "output": OutputConfig,
    "processing": ProcessingConfig,
    "aoa": AoaConfig,
}


OPTIONAL_SECTIONS = ("model", "output", "aoa")  # sample and check work without them


def spec(f: Field) -> tuple[Validator, Any]:
    """(checker, default as written in YAML) of one key's field."""
    return f.metadata["check"], f.metadata["default"]


SCHEMA: dict[str, dict[str, tuple[Validator, Any]]] = {
    name: {f.name: spec(f) for f in fields(cls)} for name, cls in SECTIONS.items()
}


@dataclass(frozen=True)
class Config:
    rasters: RastersConfig
    nodata: NodataConfig
    model: ModelConfig | None  # None: no model section (sample and check need none)
    output: OutputConfig | None  # None: no output section (likewise)
    processing: ProcessingConfig = field(default_factory=ProcessingConfig)
    source: Path | None = None  # the YAML file, when there is one
    aoa: AoaConfig | None = None  # the area of applicability's training table and method

    @property
    def report_path(self) -> Path:
        assert self.output is not None
        return sibling(self.output.path, ".report.json")


def _plain(value: Any) -> Any:
    """A typed config value as YAML or JSON holds it."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value != value:
        return "nan"
    return value


def as_document(cfg: Config) -> dict[str, Any]:
    """The config as a mapping of plain values, every default filled in: what ``load_config``
    reads back to the same Config (paths absolute)."""
    out: dict[str, Any] = {}
    for name in SECTIONS:
        section = getattr(cfg, name)
        if section is None:
            continue
        values = {f.name: _plain(getattr(section, f.name)) for f in fields(section)}
        if name == "rasters" and section.files is not None:
            values["files"] = {
                key: str(path) if band is None else {"path": str(path), "band": band}
                for key, path, band in section.files
            }
        out[name] = values
    return out


def sibling(path: Path, suffix: str) -> Path:
    """prediction.tif -> prediction<suffix> in the same folder."""
    return path.with_name(path.stem + suffix)


def _section(raw: Any, name: str, base: Path) -> Any:
    cls = SECTIONS[name]
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise v.fail(name, "a mapping of keys", raw)
    allowed = [f.name for f in fields(cls)]
    unknown = [k for k in raw if k not in allowed]
    if unknown:
        raise ConfigError(
            f"unknown config key '{name}.{unknown[0]}'; allowed in '{name}': " + ", ".join(allowed)
        )
    values = {}
    for f in fields(cls):
        check, default = spec(f)
        if f.name in raw:
            values[f.name] = check(raw[f.name], f"{name}.{f.name}", base)
        elif default is REQUIRED:
            raise ConfigError(f"missing required config key '{name}.{f.name}'")
        else:
            values[f.name] = check(default, f"{name}.{f.name}", base)
    return cls(**values)


def _check_output(out: OutputConfig, aoa: AoaConfig | None) -> None:
    if out.dtype is not None and out.nodata is not None:
        out.for_task("regression" if out.dtype in FLOAT_DTYPES else "classification")
    seen: dict[Path, str] = {}
    for key, path in out.named_rasters.items():
        shown = "output.quantiles.path" if key == "quantiles" else f"output.{key}"
        if path.suffix.lower() not in (".tif", ".tiff"):
            raise ConfigError(f"config key '{shown}': expected a .tif file, got {str(path)!r}")
        if path in seen:
            raise ConfigError(
                f"config key '{shown}': {path} is also output.{seen[path]}; "
                "each output needs its own file"
            )
        seen[path] = key
    if out.preview is not None and out.preview.suffix.lower() != ".png":
        raise ConfigError(
            f"config key 'output.preview': expected a .png file, got {str(out.preview)!r}"
        )
    asked = [k for k in ("di", "aoa") if getattr(out, k) is not None]
    if asked and aoa is None:
        raise ConfigError(
            f"config key 'output.{asked[0]}': the area of applicability needs the training "
            "rows: add the section 'aoa' with 'aoa.training' (docs/aoa.md)"
        )


def _check_rasters(rasters: RastersConfig) -> None:
    given = [k for k in ("folder", "files", "stac") if getattr(rasters, k) is not None]
    if len(given) != 1:
        raise ConfigError(
            "config section 'rasters': give exactly one of 'rasters.folder' (a folder searched "
            "for layers), 'rasters.files' (feature name -> path or GDAL URL) and 'rasters.stac' "
            "(a STAC ItemCollection or Item files)"
            + {0: "", 2: ", not both", 3: ", not all three"}[len(given)]
        )
    if not rasters.align:
        if rasters.reference is not None:
            raise ConfigError(
                "config key 'rasters.reference': a reference grid is only used with "
                "rasters.align: true"
            )
        if rasters.resampling != {"default": "nearest"}:
            raise ConfigError(
                "config key 'rasters.resampling': resampling is only used with rasters.align: true"
            )


def parse_config(raw: Any, base_dir: Path, source: Path | None = None) -> Config:
    """Validate a parsed YAML mapping; relative paths resolve against ``base_dir``."""
    if not isinstance(raw, Mapping):
        where = f" in {source}" if source else ""
        raise ConfigError(f"the config{where} must be a mapping with sections " + ", ".join(SCHEMA))
    unknown = [k for k in raw if k not in SCHEMA]
    if unknown:
        raise ConfigError(
            f"unknown config section '{unknown[0]}'; allowed sections: " + ", ".join(SCHEMA)
        )
    base = base_dir.resolve()
    parts: dict[str, Any] = {}
    for name in SCHEMA:
        if name in OPTIONAL_SECTIONS and raw.get(name) is None:
            parts[name] = None  # a run will say it needs it (Config.need)
            continue
        parts[name] = _section(raw.get(name), name, base)
        if name == "rasters":  # a missing folder is reported before later sections' errors
            _check_rasters(parts[name])
    if parts["output"] is not None:
        _check_output(parts["output"], parts["aoa"])
    return Config(**parts, source=source)


def load_config(
    source: str | os.PathLike | Mapping | Config, base_dir: Path | None = None
) -> Config:
    """A YAML path, a mapping (paths relative to ``base_dir`` or the cwd), or a Config."""
    if isinstance(source, Config):
        return source
    if isinstance(source, Mapping):
        return parse_config(source, Path(base_dir) if base_dir else Path.cwd())
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    return parse_config(raw, Path(base_dir) if base_dir else path.parent, source=path.resolve())
