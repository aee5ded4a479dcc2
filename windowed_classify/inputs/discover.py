"""Which rasters are layers: every file under ``rasters.folder`` with a listed extension, or
the files ``rasters.files`` names. Nothing is opened here."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from ..config import RastersConfig
from ..config_values import is_remote
from ..errors import InputError

log = logging.getLogger(__name__)


def discover(rasters: RastersConfig, exclude: Sequence[Path] = ()) -> list[tuple[str, Path | str]]:
    """Every file under the folder (recursive) with a listed extension, sorted by relative path.

    Returns (feature name, path) pairs; two files with the same feature name is an error.
    ``exclude`` (the tool's own output, when it lies in the folder) is never a layer.
    With ``rasters.files`` instead: those, in the order given (URLs are not checked here).
    """
    if rasters.files is not None:
        return _listed_files(rasters.files, exclude)
    folder = rasters.folder
    assert folder is not None
    if not folder.is_dir():
        raise InputError(f"rasters.folder does not exist or is not a folder: {folder}")
    skip = {p.resolve() for p in exclude}
    found = []
    for path in folder.rglob("*"):
        lower = path.name.lower()
        ext = next((e for e in rasters.extensions if lower.endswith(e)), None)
        if ext is not None and path.is_file():
            if path.resolve() in skip:
                log.info("not a layer: %s is this run's output", path)
                continue
            found.append((path.relative_to(folder).as_posix(), path, path.name[: -len(ext)]))
    found.sort(key=lambda item: item[0])
    by_name: dict[str, Path] = {}
    for _, path, name in found:
        if name in by_name:
            raise InputError(
                f"two rasters have the feature name '{name}': {by_name[name]} and {path}"
            )
        by_name[name] = path
    if not found:
        raise InputError(
            f"no rasters with extension {', '.join(rasters.extensions)} found under "
            f"rasters.folder {folder}"
        )
    return [(name, path) for _, path, name in found]


def _listed_files(
    files: Sequence[tuple[str, Path | str]], exclude: Sequence[Path]
) -> list[tuple[str, Path | str]]:
    """``rasters.files``: local files must exist; GDAL paths and URLs are opened later."""
    skip = {p.resolve() for p in exclude}
    for name, path in files:
        if is_remote(path):
            continue
        assert isinstance(path, Path)
        if not path.is_file():
            raise InputError(f"rasters.files.{name}: file not found: {path}")
        if path.resolve() in skip:
            raise InputError(f"rasters.files.{name}: {path} is this run's output, not a layer")
    return list(files)

