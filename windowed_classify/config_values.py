"""The config's value checkers: each takes (value, key, base_dir) and returns the typed value,
or raises a ConfigError whose message names the key (``section.key``) at fault."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError

Validator = Callable[[Any, str, Path], Any]


def fail(key: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"config key '{key}': expected {expected}, got {value!r}")


def to_path(value: Any, key: str, base: Path) -> Path:
    if not isinstance(value, str | os.PathLike) or not str(value).strip():
        raise fail(key, "a path (text)", value)
    if "\x00" in str(value):  # no file system takes it; os calls would raise ValueError
        raise fail(key, "a path without NUL characters", value)
    p = Path(os.path.expanduser(str(value)))
    # normalised as written (a/../b -> b), symbolic links left as they are
    return Path(os.path.normpath(p if p.is_absolute() else base / p))


def to_opt_path(value: Any, key: str, base: Path) -> Path | None:
    return None if value is None else to_path(value, key, base)


def to_bool(value: Any, key: str, base: Path) -> bool:
    if not isinstance(value, bool):
        raise fail(key, "true or false", value)
    return value


def to_int(minimum: int, maximum: int | None = None) -> Validator:
    def check(value: Any, key: str, base: Path) -> int:
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise fail(key, "a whole number", value)
        if value < minimum or (maximum is not None and value > maximum):
            bound = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
            raise fail(key, f"a whole number {bound}", value)
        return int(value)

    return check


def to_opt_int(minimum: int) -> Validator:
    inner = to_int(minimum)
    return lambda value, key, base: None if value is None else inner(value, key, base)


def to_seconds(value: Any, key: str, base: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise fail(key, "a number of seconds >= 0", value)
    return float(value)


def one_of(options: tuple[str, ...]) -> Validator:
    def check(value: Any, key: str, base: Path) -> str:
        text = str(value).lower() if isinstance(value, str) else None
        if text not in options:
            raise fail(key, "one of " + ", ".join(options), value)
        return text

    return check


def opt_one_of(options: tuple[str, ...]) -> Validator:
    """``one_of``, or None (a default decided later, e.g. by the model's task)."""
    inner = one_of(options)
    return lambda value, key, base: None if value is None else inner(value, key, base)


def to_number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        if isinstance(value, str):
            try:
                return float(value)  # "nan", "-inf", "-9999"
            except ValueError:
                pass
        raise fail(key, "a number", value)
    return float(value)


def to_numbers(value: Any, key: str, base: Path) -> tuple[float, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list | tuple) else [value]
    return tuple(to_number(v, f"{key}[{i}]") for i, v in enumerate(items))


REMOTE = re.compile(r"^(/vsi[a-z0-9_]+/|[a-z][a-z0-9+.-]*://)", re.IGNORECASE)


def is_remote(path: Path | str) -> bool:
    """A GDAL virtual path or URL (/vsicurl/..., /vsis3/..., https://...): not a local file."""
    return isinstance(path, str) and REMOTE.match(path) is not None


def to_source(value: Any, key: str, base: Path) -> Path | str:
    """A local path (resolved like every path) or, kept as written, a GDAL path or URL."""
    if isinstance(value, str) and REMOTE.match(value.strip()):
        return value.strip()
    return to_path(value, key, base)


def to_files(
    value: Any, key: str, base: Path
) -> tuple[tuple[str, Path | str, int | None], ...] | None:
    """name -> path (or GDAL URL), or name -> {path: ..., band: N}: (name, path, band or None)."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not value:
        raise fail(key, "a mapping of feature name to a raster path or GDAL URL", value)
    out = []
    for name, source in value.items():
        if not isinstance(name, str) or not name:
            raise fail(key, "feature names (text) as keys", name)
        band = None
        if isinstance(source, Mapping):
            extra = [k for k in source if k not in ("path", "band")]
            if extra or "path" not in source:
                raise fail(f"{key}.{name}", "a path, or a mapping with path and band", source)
            if "band" in source:
                band = to_int(1)(source["band"], f"{key}.{name}.band", base)
            source = source["path"]
        out.append((name, to_source(source, f"{key}.{name}", base), band))
    return tuple(out)


def to_sources(value: Any, key: str, base: Path) -> tuple[Path | str, ...] | None:
    """One path or URL, or a list of them (each resolved like ``to_source``)."""
    if value is None:
        return None
    items = value if isinstance(value, list | tuple) else [value]
    if not items:
        raise fail(key, "a path or URL, or a list of them", value)
    return tuple(to_source(item, f"{key}[{i}]", base) for i, item in enumerate(items))


def to_media_types(value: Any, key: str, base: Path) -> tuple[str, ...]:
    """Media types (``image/tiff; application=geotiff``): compared without case or spaces."""
    items = value if isinstance(value, list | tuple) else [value]
    if not items or not all(isinstance(t, str) and "/" in t for t in items):
        raise fail(key, "a media type such as 'image/tiff', or a list of them", value)
    return tuple(media_type(t) for t in items)


def media_type(text: str) -> str:
    """A media type as compared: lower case, no spaces (``image/tiff;application=geotiff``)."""
    return "".join(text.split()).lower()


def to_engine(value: Any, key: str, base: Path) -> str:
    """auto: threads unless a probe finds the model's predict holds the GIL; local: threads
    (another name of threads)."""
    engine = one_of(("auto", "local", "threads", "processes", "dask"))(value, key, base)
    return "threads" if engine == "local" else engine


def to_scheduler(value: Any, key: str, base: Path) -> str:
    text = value.strip() if isinstance(value, str) else None
    if not text or not (text.lower() == "local" or "://" in text):
        raise fail(key, "local, or a Dask scheduler address such as tcp://host:8786", value)
    return "local" if text.lower() == "local" else text


def to_resampling(value: Any, key: str, base: Path) -> dict[str, str]:
    """A method name, or {default: method, <feature>: method, ...}; names as rasterio's."""
    from rasterio.warp import SUPPORTED_RESAMPLING

    methods = tuple(r.name for r in SUPPORTED_RESAMPLING)
    items = value if isinstance(value, Mapping) else {"default": value}
    if not items:
        raise fail(key, "a resampling method, or a mapping of feature name to method", value)
    out = {"default": "nearest"}
    for name, method in items.items():
        if not isinstance(name, str) or not name:
            raise fail(key, "feature names (text) as keys", name)
        sub = key if items is not value else f"{key}.{name}"
        out[name] = one_of(methods)(method, sub, base)
    return out


def to_extensions(value: Any, key: str, base: Path) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    out = []
    for i, v in enumerate(items):
        if not isinstance(v, str) or not v.strip(".").strip():
            raise fail(f"{key}[{i}]", "a file extension such as .tif", v)
        out.append("." + v.strip().lstrip(".").lower())
    if not out:
        raise fail(key, "at least one extension", value)
    return tuple(out)


def to_names(value: Any, key: str, base: Path) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not value:
        raise fail(key, "a non-empty list of feature names", value)
    for i, v in enumerate(value):
        if not isinstance(v, str) or not v:
            raise fail(f"{key}[{i}]", "a feature name (text)", v)
    no_repeats(value, key)
    return tuple(value)


def to_labels(value: Any, key: str, base: Path) -> tuple[Any, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not value:
        raise fail(key, "a non-empty list of class labels", value)
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise fail(f"{key}[{i}]", "a class label (text or number)", v)
    no_repeats(value, key)
    return tuple(value)


def no_repeats(values: list | tuple, key: str) -> None:
    seen: set = set()
    for v in values:
        if v in seen:
            raise ConfigError(f"config key '{key}': {v!r} is listed twice")
        seen.add(v)


def to_opt_nodata(value: Any, key: str, base: Path) -> float | None:
    """A nodata value: a number, or NaN (for a float output); None: the task's default."""
    if value is None:
        return None
    number = to_number(value, key)
    if number != number:  # NaN
        return float("nan")
    if number in (float("inf"), float("-inf")):
        raise fail(key, "a finite number or nan", value)
    return int(number) if float(number).is_integer() and abs(number) < 2**63 else number


def to_levels(value: Any, key: str) -> tuple[float, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    if not items:
        raise fail(key, "a non-empty list of quantile levels from 0 to 1", value)
    out = []
    for i, v in enumerate(items):
        number = to_number(v, f"{key}[{i}]")
        if not 0.0 <= number <= 1.0:
            raise fail(f"{key}[{i}]", "a quantile level from 0 to 1 (0.5: the median)", v)
        out.append(number)
    no_repeats(out, key)
    return tuple(out)


DEFAULT_LEVELS = (0.05, 0.5, 0.95)


def to_quantiles(value: Any, key: str, base: Path) -> Mapping[str, Any] | None:
    """``{path: q.tif, levels: [0.05, 0.5, 0.95]}`` (or a path alone: those levels)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return {"path": to_path(value, key, base), "levels": DEFAULT_LEVELS}
    extra = [k for k in value if k not in ("path", "levels")]
    if extra or "path" not in value:
        raise fail(
            key,
            "a mapping with path and levels (e.g. {path: q.tif, levels: [0.05, 0.5, 0.95]})",
            value,
        )
    levels = to_levels(value["levels"], f"{key}.levels") if "levels" in value else DEFAULT_LEVELS
    return {"path": to_path(value["path"], f"{key}.path", base), "levels": levels}


def to_weights(value: Any, key: str, base: Path) -> str | dict[str, float] | None:
    """``importance``, ``equal``, or a mapping feature -> weight >= 0; None: importance when
    the model has them, else equal (checked against the features in ``prepare``)."""
    if value is None:
        return None
    if isinstance(value, str):
        return one_of(("importance", "equal"))(value, key, base)
    if not isinstance(value, Mapping) or not value:
        raise fail(key, "importance, equal, or a mapping of feature name to weight", value)
    out = {}
    for name, weight in value.items():
        if not isinstance(name, str) or not name:
            raise fail(key, "feature names (text) as keys", name)
        number = to_number(weight, f"{key}.{name}") if not isinstance(weight, str) else None
        if number is None or not number >= 0 or number == float("inf"):
            raise fail(f"{key}.{name}", "a weight >= 0", weight)
        out[name] = number
    return out


def to_folds(value: Any, key: str, base: Path) -> str | dict[str, int]:
    """``none``, a column name holding each row's fold, or ``{random: K}`` (K >= 2)."""
    if value is None:
        return "none"
    if isinstance(value, Mapping):
        if set(value) != {"random"}:
            raise fail(key, "none, a column name, or {random: K}", value)
        return {"random": to_int(2)(value["random"], f"{key}.random", base)}
    if not isinstance(value, str) or not value.strip():
        raise fail(key, "none, a column name, or {random: K}", value)
    text = value.strip()
    match = re.match(r"^random\s*:\s*(\S+)$", text, re.IGNORECASE)
    if match:
        count = match.group(1)
        return {"random": to_int(2)(int(count) if count.isdigit() else count, key, base)}
    return "none" if text.lower() == "none" else text
