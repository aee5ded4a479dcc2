"""Two GDAL functions rasterio does not expose: GDAL's own HEAD of a remote file
(``VSIGetFileMetadata(path, "HEADERS")``, for the paths only GDAL knows how to sign: ``/vsis3/``,
``/vsigs/``, ``/vsiaz/``, ...), and ``VSICurlPartialClearCache`` (forget what was read of a file
that changed).

They are called through ctypes in the GDAL library rasterio has loaded (its configuration,
credentials and caches): the candidate that sees an option set through ``rasterio.Env`` (a
pyogrio wheel, say, brings a GDAL of its own). When none is found (an unusual build), a HEAD
answers None (the file's identity is unknown) and clearing the cache does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import glob
import logging
import os
import threading
import uuid
from pathlib import Path

import rasterio

from .gdal_env import remote_env

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_LIB: list[ctypes.CDLL | None] = []  # [] not looked for yet; [None] not found


def _candidates() -> list[str]:
    """Where rasterio's GDAL library may be: the one its wheel bundles, one this process has
    mapped (Linux), the system's."""
    found: list[str] = []
    package = Path(rasterio.__file__).parent
    for pattern in ("rasterio.libs/*gdal*", "rasterio/.dylibs/libgdal*"):
        found += sorted(glob.glob(str(package.parent / pattern)))
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/maps").read_text().splitlines():
            name = line.rsplit(" ", 1)[-1]
            if "gdal" in os.path.basename(name).lower() and ".so" in name:
                found.append(name)
    system = ctypes.util.find_library("gdal")
    if system:
        found.append(system)
    return list(dict.fromkeys(found))


def _library() -> ctypes.CDLL | None:
    """rasterio's GDAL: the candidate that sees an option set through rasterio (another GDAL
    may be loaded too, e.g. the one a pyogrio wheel bundles)."""
    with _LOCK:
        if not _LIB:
            token = uuid.uuid4().hex
            lib = None
            with rasterio.Env(WINDOWED_CLASSIFY_PROBE=token):
                for path in _candidates():
                    candidate = _load(path)
                    if candidate is None:
                        continue
                    seen = candidate.CPLGetConfigOption(b"WINDOWED_CLASSIFY_PROBE", None)
                    if seen == token.encode():
                        lib = candidate
                        break
            if lib is None:
                log.info(
                    "rasterio's GDAL library could not be found: object store files have no "
                    "identity, and a remote file that changed during this process may be read "
                    "stale"
                )
            _LIB.append(lib)
        return _LIB[0]


def _load(path: str) -> ctypes.CDLL | None:
    """The library at ``path`` with the functions used here typed, or None."""
    try:
        lib = ctypes.CDLL(path)
        functions = (
            lib.CPLGetConfigOption,
            lib.VSIGetFileMetadata,
            lib.CSLDestroy,
            lib.VSICurlPartialClearCache,
        )
    except (OSError, AttributeError):
        return None
    get_option, metadata, destroy, clear = functions
    get_option.restype = ctypes.c_char_p
    get_option.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    metadata.restype = ctypes.POINTER(ctypes.c_char_p)
    metadata.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
    destroy.restype = None
    destroy.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
    clear.restype = None
    clear.argtypes = [ctypes.c_char_p]
    return lib


def file_headers(path: str) -> dict[str, str] | None:
    """The HTTP headers GDAL gets for a remote file (lower-case names), or None when GDAL
    cannot tell (the file system has no headers, the request failed, no library)."""
    lib = _library()
    if lib is None:
        return None
    with remote_env(path):
        items = lib.VSIGetFileMetadata(path.encode("utf-8"), b"HEADERS", None)
    if not items:
        return None
    headers: dict[str, str] = {}
    try:
        i = 0
        while items[i] is not None:
            name, _, value = items[i].decode("utf-8", "replace").partition("=")
            headers[name.strip().lower()] = value.strip()
            i += 1
    finally:
        lib.CSLDestroy(items)
    return headers


def clear_cache(path: str) -> None:
    """Forget what /vsicurl/ (and the object store file systems) read of ``path``."""
    lib = _library()
    if lib is not None:
        lib.VSICurlPartialClearCache(path.encode("utf-8"))
