"""YAML -> one typed, validated Config: paths resolved, unknown keys rejected.

Every problem is a ConfigError whose message names the key (``section.key``) at fault.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .errors import ConfigError

ARCGIS_FLOAT32_NODATA = -3.3999999521443642e38
CODE_DTYPES = ("uint8", "uint16", "int16", "uint32", "int32")
COMPRESSIONS = ("lzw", "deflate", "zstd", "lzma", "packbits", "none")


@dataclass(frozen=True)
class RastersConfig:
    folder: Path | None = None  # exactly one of folder and files
    files: tuple[tuple[str, Path | str], ...] | None = None  # (feature, path or GDAL URL)
    extensions: tuple[str, ...] = (".tif", ".tiff")
    align: bool = False  # warp misfit layers onto the reference grid, window by window
    reference: Path | None = None  # the grid to warp onto (default: the first layer's)
    resampling: Mapping[str, str] = field(default_factory=lambda: {"default": "nearest"})

    def resampling_for(self, feature: str) -> str:
        """The warp resampling method of one layer: its own entry, else the default."""
        return self.resampling.get(feature, self.resampling.get("default", "nearest"))


@dataclass(frozen=True)
class NodataConfig:
    values: tuple[float, ...] = (ARCGIS_FLOAT32_NODATA,)
    use_file_nodata: bool = True
    threshold: int = 0


@dataclass(frozen=True)
class ModelConfig:
    path: Path
    scoring_file: Path | None = None
    features: tuple[str, ...] | None = None
    classes: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class OutputConfig:
    path: Path
    dtype: str = "uint8"
    nodata: int = 255
    compress: str = "lzw"
    overwrite: bool = False
    probabilities: Path | None = None  # one band per class, in code order
    probabilities_dtype: str = "uint8"  # uint8: percent 0-100, 255 masked; float32: 0-1, NaN
    confidence: Path | None = None  # the highest class probability, same encoding
    cog: bool = False  # Cloud Optimized GeoTIFFs (internal overviews)
    preview: Path | None = None  # a quick-look PNG of the classes

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
    memory_mb: int = 256
    workers: int | None = None  # None: all cores
    engine: str = "threads"  # threads (one model; "local" means this), processes, or dask
    scheduler: str = "local"  # dask: a scheduler's address, or local (a LocalCluster)
    stats_cache: bool = True
    cache_dir: Path | None = None  # None: $XDG_CACHE_HOME/windowed_classify (~/.cache/...)
    checkpoint_seconds: float = 10.0  # how often pass 2 makes its progress resumable


@dataclass(frozen=True)
class Config:
    rasters: RastersConfig
    nodata: NodataConfig
    model: ModelConfig
    output: OutputConfig
    processing: ProcessingConfig = field(default_factory=ProcessingConfig)
    source: Path | None = None  # the YAML file, when there is one

    @property
    def report_path(self) -> Path:
        return sibling(self.output.path, ".report.json")


def sibling(path: Path, suffix: str) -> Path:
    """prediction.tif -> prediction<suffix> in the same folder."""
    return path.with_name(path.stem + suffix)


# ----------------------------------------------------------------------------- validators
# Each validator takes (value, key, base_dir) and returns the typed value or raises.

Validator = Callable[[Any, str, Path], Any]


def _fail(key: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"config key '{key}': expected {expected}, got {value!r}")


def _path(value: Any, key: str, base: Path) -> Path:
    if not isinstance(value, str | os.PathLike) or not str(value).strip():
        raise _fail(key, "a path (text)", value)
    if "\x00" in str(value):  # no file system takes it; os calls would raise ValueError
        raise _fail(key, "a path without NUL characters", value)
    p = Path(os.path.expanduser(str(value)))
    return p if p.is_absolute() else (base / p)


def _opt_path(value: Any, key: str, base: Path) -> Path | None:
    return None if value is None else _path(value, key, base)


def _bool(value: Any, key: str, base: Path) -> bool:
    if not isinstance(value, bool):
        raise _fail(key, "true or false", value)
    return value


def _int(minimum: int, maximum: int | None = None) -> Validator:
    def check(value: Any, key: str, base: Path) -> int:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise _fail(key, "a whole number", value)
        if value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
            raise _fail(key, f"a whole number {bound}", value)
        return int(value)

    return check


def _opt_int(minimum: int) -> Validator:
    inner = _int(minimum)
    return lambda value, key, base: None if value is None else inner(value, key, base)


def _seconds(value: Any, key: str, base: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise _fail(key, "a number of seconds >= 0", value)
    return float(value)


def _choice(options: tuple[str, ...]) -> Validator:
    def check(value: Any, key: str, base: Path) -> str:
        text = str(value).lower() if isinstance(value, str) else None
        if text not in options:
            raise _fail(key, "one of " + ", ".join(options), value)
        return text

    return check


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        if isinstance(value, str):
            try:
                return float(value)  # "nan", "-inf", "-9999"
            except ValueError:
                pass
        raise _fail(key, "a number", value)
    return float(value)


def _numbers(value: Any, key: str, base: Path) -> tuple[float, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list | tuple) else [value]
    return tuple(_number(v, f"{key}[{i}]") for i, v in enumerate(items))


REMOTE = re.compile(r"^(/vsi[a-z0-9_]+/|[a-z][a-z0-9+.-]*://)", re.IGNORECASE)


def is_remote(path: Path | str) -> bool:
    """A GDAL virtual path or URL (/vsicurl/..., /vsis3/..., https://...): not a local file."""
    return isinstance(path, str) and REMOTE.match(path) is not None


def _source(value: Any, key: str, base: Path) -> Path | str:
    """A local path (resolved like every path) or, kept as written, a GDAL path or URL."""
    if isinstance(value, str) and REMOTE.match(value.strip()):
        return value.strip()
    return _path(value, key, base)


def _files(value: Any, key: str, base: Path) -> tuple[tuple[str, Path | str], ...] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not value:
        raise _fail(key, "a mapping of feature name to a raster path or GDAL URL", value)
    out = []
    for name, source in value.items():
        if not isinstance(name, str) or not name:
            raise _fail(key, "feature names (text) as keys", name)
        out.append((name, _source(source, f"{key}.{name}", base)))
    return tuple(out)


def _engine(value: Any, key: str, base: Path) -> str:
    """local is the default local engine: threads."""
    engine = _choice(("local", "threads", "processes", "dask"))(value, key, base)
    return "threads" if engine == "local" else engine


def _scheduler(value: Any, key: str, base: Path) -> str:
    text = value.strip() if isinstance(value, str) else None
    if not text or not (text.lower() == "local" or "://" in text):
        raise _fail(key, "local, or a Dask scheduler address such as tcp://host:8786", value)
    return "local" if text.lower() == "local" else text


def _resampling(value: Any, key: str, base: Path) -> dict[str, str]:
    """A method name, or {default: method, <feature>: method, ...}; names as rasterio's."""
    from rasterio.warp import SUPPORTED_RESAMPLING

    methods = tuple(r.name for r in SUPPORTED_RESAMPLING)
    items = value if isinstance(value, Mapping) else {"default": value}
    if not items:
        raise _fail(key, "a resampling method, or a mapping of feature name to method", value)
    out = {"default": "nearest"}
    for name, method in items.items():
        if not isinstance(name, str) or not name:
            raise _fail(key, "feature names (text) as keys", name)
        sub = key if items is not value else f"{key}.{name}"
        out[name] = _choice(methods)(method, sub, base)
    return out


def _extensions(value: Any, key: str, base: Path) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    out = []
    for i, v in enumerate(items):
        if not isinstance(v, str) or not v.strip(".").strip():
            raise _fail(f"{key}[{i}]", "a file extension such as .tif", v)
        out.append("." + v.strip().lstrip(".").lower())
    if not out:
        raise _fail(key, "at least one extension", value)
    return tuple(out)


def _names(value: Any, key: str, base: Path) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not value:
        raise _fail(key, "a non-empty list of feature names", value)
    for i, v in enumerate(value):
        if not isinstance(v, str) or not v:
            raise _fail(f"{key}[{i}]", "a feature name (text)", v)
    _no_repeats(value, key)
    return tuple(value)


def _labels(value: Any, key: str, base: Path) -> tuple[Any, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not value:
        raise _fail(key, "a non-empty list of class labels", value)
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise _fail(f"{key}[{i}]", "a class label (text or number)", v)
    _no_repeats(value, key)
    return tuple(value)


def _no_repeats(values: list | tuple, key: str) -> None:
    seen: set = set()
    for v in values:
        if v in seen:
            raise ConfigError(f"config key '{key}': {v!r} is listed twice")
        seen.add(v)


_REQUIRED = object()

SCHEMA: dict[str, dict[str, tuple[Validator, Any]]] = {
    "rasters": {
        "folder": (_opt_path, None),
        "files": (_files, None),
        "extensions": (_extensions, [".tif", ".tiff"]),
        "align": (_bool, False),
        "reference": (_opt_path, None),
        "resampling": (_resampling, "nearest"),
    },
    "nodata": {
        "values": (_numbers, [ARCGIS_FLOAT32_NODATA]),
        "use_file_nodata": (_bool, True),
        "threshold": (_int(0), 0),
    },
    "model": {
        "path": (_path, _REQUIRED),
        "scoring_file": (_opt_path, None),
        "features": (_names, None),
        "classes": (_labels, None),
    },
    "output": {
        "path": (_path, _REQUIRED),
        "dtype": (_choice(CODE_DTYPES), "uint8"),
        "nodata": (_int(-(2**31)), 255),
        "compress": (_choice(COMPRESSIONS), "lzw"),
        "overwrite": (_bool, False),
        "probabilities": (_opt_path, None),
        "probabilities_dtype": (_choice(("uint8", "float32")), "uint8"),
        "confidence": (_opt_path, None),
        "cog": (_bool, False),
        "preview": (_opt_path, None),
    },
    "processing": {
        "memory_mb": (_int(1), 256),
        "workers": (_opt_int(1), None),
        "engine": (_engine, "local"),
        "scheduler": (_scheduler, "local"),
        "stats_cache": (_bool, True),
        "cache_dir": (_opt_path, None),
        "checkpoint_seconds": (_seconds, 10.0),
    },
}
SECTIONS = {
    "rasters": RastersConfig,
    "nodata": NodataConfig,
    "model": ModelConfig,
    "output": OutputConfig,
    "processing": ProcessingConfig,
}


def _section(raw: Any, name: str, base: Path) -> Any:
    spec = SCHEMA[name]
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise _fail(name, "a mapping of keys", raw)
    unknown = [k for k in raw if k not in spec]
    if unknown:
        raise ConfigError(
            f"unknown config key '{name}.{unknown[0]}'; allowed in '{name}': " + ", ".join(spec)
        )
    values = {}
    for key, (check, default) in spec.items():
        if key in raw:
            values[key] = check(raw[key], f"{name}.{key}", base)
        elif default is _REQUIRED:
            raise ConfigError(f"missing required config key '{name}.{key}'")
        else:
            values[key] = check(default, f"{name}.{key}", base)
    return SECTIONS[name](**values)


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
        parts[name] = _section(raw.get(name), name, base)
        if name == "rasters":  # a missing folder is reported before later sections' errors
            _check_rasters(parts[name])
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
