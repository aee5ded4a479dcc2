"""Two GDAL functions rasterio does not expose: GDAL's own HEAD of a remote file
(``VSIGetFileMetadata(path, "HEADERS")``, for the paths only GDAL knows how to sign: ``/vsis3/``,
``/vsigs/``, ``/vsiaz/``, ...), and ``VSICurlPartialClearCache`` (forget what was read of a file
that changed).

rasterio does not expose that function, so it is called through ctypes in the GDAL library
rasterio has loaded (same configuration and credentials). When that library cannot be found
(an unusual build), the answer is None and the caller treats the file's identity as unknown.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import glob
import logging
import os
import threading
from pathlib import Path

import rasterio

from .gdal_env import remote_env

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_LIB: list[ctypes.CDLL | None] = []  # [] not looked for yet; [None] not found


def _candidates() -> list[str]:
    """Where rasterio's GDAL library is: the one this process mapped (Linux), the one a wheel
    bundles, or the system's."""
    found: list[str] = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/maps").read_text().splitlines():
            name = line.rsplit(" ", 1)[-1]
            if "gdal" in os.path.basename(name).lower() and ".so" in name:
                found.append(name)
    package = Path(rasterio.__file__).parent
    for pattern in ("rasterio.libs/*gdal*", "rasterio/.dylibs/libgdal*", "rasterio.libs/gdal*"):
        found += sorted(glob.glob(str(package.parent / pattern)))
    system = ctypes.util.find_library("gdal")
    if system:
        found.append(system)
    return list(dict.fromkeys(found))


def _library() -> ctypes.CDLL | None:
    with _LOCK:
        if not _LIB:
            import rasterio._base  # noqa: F401 - loads GDAL first, so the same one is found

            lib = None
            for path in _candidates():
                try:
                    candidate = ctypes.CDLL(path)
                    function = candidate.VSIGetFileMetadata
                except (OSError, AttributeError):
                    continue
                function.restype = ctypes.POINTER(ctypes.c_char_p)
                function.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
                candidate.CSLDestroy.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
                candidate.CSLDestroy.restype = None
                candidate.VSICurlPartialClearCache.argtypes = [ctypes.c_char_p]
                candidate.VSICurlPartialClearCache.restype = None
                lib = candidate
                break
            if lib is None:
                log.info(
                    "the GDAL library could not be found: object store files have no identity, "
                    "and a remote file that changed during this process may be read stale"
                )
            _LIB.append(lib)
        return _LIB[0]


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
