"""Which rasters are inputs: every file under ``rasters.folder`` with a listed extension, the
files ``rasters.files`` names, or the assets of the STAC items ``rasters.stac`` names. Nothing
is opened here: a file's bands are listed by ``layers.list_bands``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..config import RastersConfig
from ..config_values import is_remote
from ..errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """One input file (or GDAL URL) and how its layers are named.

    ``stem`` names its layers: a single-band file's layer is ``stem``; band N of a multi-band
    file is the band's description when set and unique in the file, else ``<stem>_<N>``.
    ``band`` (``rasters.files: {name: {path, band}}``) takes that band alone, named ``stem``.
    """

    stem: str
    path: Path | str
    band: int | None = None
    listed: bool = False  # named in rasters.files (errors say so)
    origin: str = ""  # where else it was named (a STAC item's asset), for messages

    @property
    def where(self) -> str:
        if self.origin:
            return self.origin
        return f"rasters.files.{self.stem}" if self.listed else str(self.path)


def discover(rasters: RastersConfig, exclude: Sequence[Path] = ()) -> list[Source]:
    """Every file under the folder (recursive) with a listed extension, sorted by relative path.

    ``exclude`` (the tool's own output, when it lies in the folder) is never an input.
    With ``rasters.files`` instead: those, in the order given (URLs are not checked here); with
    ``rasters.stac``: the items' assets of the chosen media types (``stac.stac_assets``).
    """
    if rasters.files is not None:
        return _listed_files(rasters.files, exclude)
    if rasters.stac is not None:
        from .stac import stac_assets  # pystac only when asked for

        return [
            Source(stem, path, origin=origin)
            for stem, path, origin in stac_assets(rasters, exclude)
        ]
    folder = rasters.folder
    assert folder is not None
    if folder.is_file():
        raise InputError(
            f"rasters.folder {folder} is a file, not a folder: to name files one by one, use "
            "rasters.files (feature name -> path) instead of rasters.folder"
        )
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
    if not found:
        raise InputError(
            f"no rasters with extension {', '.join(rasters.extensions)} found under "
            f"rasters.folder {folder}"
        )
    return [Source(stem, path) for _, path, stem in found]


def _listed_files(
    files: Sequence[tuple[str, Path | str, int | None]], exclude: Sequence[Path]
) -> list[Source]:
    """``rasters.files``: local files must exist; GDAL paths and URLs are opened later."""
    skip = {p.resolve() for p in exclude}
    for name, path, _ in files:
        if is_remote(path):
            continue
        assert isinstance(path, Path)
        if not path.is_file():
            raise InputError(f"rasters.files.{name}: file not found: {path}")
        if path.resolve() in skip:
            raise InputError(f"rasters.files.{name}: {path} is this run's output, not a layer")
    return [Source(name, path, band, listed=True) for name, path, band in files]
