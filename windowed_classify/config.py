"""YAML -> one typed, validated Config: paths resolved, unknown keys rejected.

Every key is written once, as a dataclass field made by ``key()``: its checker, its default as
one writes it in YAML, and its help. The validation, the unknown-key messages, ``SCHEMA`` and
the generated reference (README table, configs/example.yaml: see ``config_docs``) all come
from those fields. Every problem is a ConfigError whose message names the key at fault.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from . import config_values as v
from .config_values import Validator
from .errors import ConfigError

ARCGIS_FLOAT32_NODATA = -3.3999999521443642e38
CODE_DTYPES = ("uint8", "uint16", "int16", "uint32", "int32")
COMPRESSIONS = ("lzw", "deflate", "zstd", "lzma", "packbits", "none")
REQUIRED = object()  # a key without a default


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
    as in YAML (the field's default is ``check(default)``); ``help`` is one line for the README
    table, ``details`` more lines for example.yaml; ``example`` is the value example.yaml shows
    when it is not the default (``commented``: shown as a comment); ``shown`` the README's
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
        details="Every file whose name ends with one of the extensions (case-insensitive) is a "
        "layer. Layers are sorted by relative path; the feature name is the file name without "
        "its extension (Elev_dem.tif -> Elev_dem). Two files with the same feature name are an "
        "error. Every raster must share the first one's CRS, transform and size.",
        example="covariates",
        shown="one of folder/files",
    )
    files: tuple[tuple[str, Path | str], ...] | None = key(
        v.to_files,
        None,
        help="feature name -> path or GDAL URL (`/vsicurl/https://...`, `/vsis3/...`), "
        "in this order",
        details="Instead of folder. Dask workers must be able to read the same paths.",
        example={"Elev_dem": "/shared/dem.tif", "Veg_ndvi": "/vsicurl/https://example.org/ndvi.tif"},
        shown="one of folder/files",
        commented=True,
    )
    extensions: tuple[str, ...] = key(
        v.to_extensions,
        [".tif", ".tiff", ".vrt"],
        help="file name endings that are layers (case-insensitive)",
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
        help="with `align`: a raster whose grid is the reference (default: the first layer's)",
    )
    resampling: Mapping[str, str] = key(
        v.to_resampling,
        "nearest",
        help="with `align`: a method, or `{default: ..., <feature>: ...}`",
    )

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


@dataclass(frozen=True)
class OutputConfig:
    path: Path = key(
        v.to_path,
        help="the classified GeoTIFF",
        details="Written under a temporary name (.prediction.partial.tif) and renamed into "
        "place only when complete. The JSON report is written beside it "
        "(prediction.report.json), and the style sidecars: prediction.qml (QGIS style, applied "
        "automatically), a legend CSV and prediction.tif.aux.xml (category names + attribute "
        "table).",
        example="prediction.tif",
        shown="required",
    )
    dtype: str = key(
        v.one_of(CODE_DTYPES), "uint8", help=", ".join(CODE_DTYPES)
    )
    nodata: int = key(
        v.to_int(-(2**31)), 255, help="code of masked pixels; must not collide with a class code"
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
        help="`uint8` (percent, 255 masked) or `float32` (0-1, NaN masked)",
    )
    confidence: Path | None = key(
        v.to_opt_path,
        None,
        help="GeoTIFF of the highest class probability",
        example="confidence.tif",
        commented=True,
    )
    cog: bool = key(v.to_bool, False, help="write Cloud Optimized GeoTIFFs (internal overviews)")
    preview: Path | None = key(
        v.to_opt_path,
        None,
        help="a quick-look PNG of the classes (needs the `preview` extra)",
        example="preview.png",
        commented=True,
    )

    @property
    def rasters(self) -> list[Path]:
        """Every GeoTIFF this run writes: the classes first."""
        return [p for p in (self.path, self.probabilities, self.confidence) if p is not None]

    @property
    def files(self) -> list[Path]:
        """Every file a run is asked for (rasters and preview), to check before the run."""
        return [*self.rasters, *([self.preview] if self.preview is not None else [])]


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
    stats_cache: bool = key(
        v.to_bool, True, help="reuse pass-1 statistics of unchanged files"
    )
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
}


OPTIONAL_SECTIONS = ("model", "output")  # sample and check work without them


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

    @property
    def report_path(self) -> Path:
        assert self.output is not None
        return sibling(self.output.path, ".report.json")

    def need(self, *sections: str) -> None:
        """A run needs a model and an output: an error naming a section that is absent."""
        for name in sections:
            if getattr(self, name) is None:
                raise ConfigError(
                    f"missing required config section '{name}' (with its key '{name}.path')"
                )


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


def _check_output(out: OutputConfig) -> None:
    info = np.iinfo(out.dtype)
    if not info.min <= out.nodata <= info.max:
        raise ConfigError(
            f"config key 'output.nodata': {out.nodata} does not fit output.dtype {out.dtype} "
            f"({info.min}..{info.max})"
        )
    named = {"path": out.path, "probabilities": out.probabilities, "confidence": out.confidence}
    seen: dict[Path, str] = {}
    for key, path in named.items():
        if path is None:
            continue
        if path.suffix.lower() not in (".tif", ".tiff"):
            raise ConfigError(f"config key 'output.{key}': expected a .tif file, got {str(path)!r}")
        if path in seen:
            raise ConfigError(
                f"config key 'output.{key}': {path} is also output.{seen[path]}; "
                "each output needs its own file"
            )
        seen[path] = key
    if out.preview is not None and out.preview.suffix.lower() != ".png":
        raise ConfigError(
            f"config key 'output.preview': expected a .png file, got {str(out.preview)!r}"
        )


def _check_rasters(rasters: RastersConfig) -> None:
    if (rasters.folder is None) == (rasters.files is None):
        raise ConfigError(
            "config section 'rasters': give exactly one of 'rasters.folder' (a folder searched "
            "for layers) and 'rasters.files' (feature name -> path or GDAL URL)"
            + (", not both" if rasters.folder is not None else "")
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
    parts = {}
    for name in SCHEMA:
        if name in OPTIONAL_SECTIONS and raw.get(name) is None:
            parts[name] = None  # a run will say it needs it (Config.need)
            continue
        parts[name] = _section(raw.get(name), name, base)
        if name == "rasters":  # a missing folder is reported before later sections' errors
            _check_rasters(parts[name])
    if parts["output"] is not None:
        _check_output(parts["output"])
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
