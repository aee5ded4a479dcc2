"""GDAL settings for remote layers (``/vsicurl/``, ``/vsis3/``, URLs), in one place.

They are applied around each open of a remote raster (``remote_env``), in whichever process or
thread opens it: GDAL copies the HTTP settings into the file handle at open, so the reads of that
handle keep them, and local files never see them (``GDAL_DISABLE_READDIR_ON_OPEN`` would hide a
local file's sidecars). A variable already set in the environment (or by an enclosing
``rasterio.Env``) wins over the value here: the user can tune any of them.

Why each value (GDAL 3.6 to 3.10, the versions rasterio 1.3 and 1.4 wheels ship):

- ``GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR``: opening a file does not list its folder to look for
  sidecars (``.aux.xml``, ``.ovr``, ``.msk``). On an object store that listing is one or more
  extra requests per file, and a large one in a big bucket. A cloud-optimised GeoTIFF holds its
  overviews and masks inside; remote sidecar files are not read.
- ``GDAL_HTTP_VERSION=2TLS``: HTTP/2 over HTTPS (negotiated by TLS, so a server without it keeps
  HTTP/1.1); plain ``http://`` stays HTTP/1.1 (no ``Upgrade: h2c`` probe a server may refuse).
- ``GDAL_HTTP_MULTIPLEX=YES``: on an HTTP/2 connection, the ranges of one read (the blocks of a
  window) travel in parallel on one connection instead of one after another.
- ``GDAL_HTTP_MERGE_CONSECUTIVE_RANGES=YES``: adjacent blocks of one read are fetched with one
  range request instead of one each (fewer round trips; GDAL's default, stated here so that a
  global setting elsewhere does not turn it off unnoticed).
- ``GDAL_HTTP_MAX_RETRY=4``, ``GDAL_HTTP_RETRY_DELAY=0.5``: GDAL's default is no retry at all.
  GDAL retries 429, 500, 502, 503, 504, a few transport errors (timeouts; reset connections
  from GDAL 3.9) and S3's RequestTimeout, after a delay doubled with jitter each time (0.5, 1,
  2, 4 s). GDAL 3.10 adds ``GDAL_HTTP_RETRY_CODES`` to change that list: left at its default.
  Where GDAL gives up, the tool retries the open or the window read itself (``remote.py``), with
  the same number of tries and the same first delay.
- ``GDAL_HTTP_CONNECTTIMEOUT=30``: a host that does not accept the connection in 30 s is an error
  (curl's default is 300 s), retried as above.
- ``GDAL_HTTP_LOW_SPEED_LIMIT=1``, ``GDAL_HTTP_LOW_SPEED_TIME=60``: a transfer that stalls (under 1
  byte/s for 60 s) is aborted and retried, rather than a total time limit that would also cut a
  large, slow but healthy read. GDAL has no limit by default: a stalled connection hangs the run.

Left at GDAL's defaults, on purpose:

- ``VSI_CACHE`` (off): a per-file-handle cache (``VSI_CACHE_SIZE``, 25 MB each) fills up to its
  size on every open file, so its memory grows with layers x workers (100 layers, 2 workers: up
  to 5 GB), outside ``processing.memory_mb``. Each window's blocks are read once per pass; what is
  read twice (the header, blocks shared by two windows) is already kept by /vsicurl/'s own cache,
  one per process, ``CPL_VSIL_CURL_CACHE_SIZE`` (16 MB).
- ``CPL_VSIL_CURL_ALLOWED_EXTENSIONS`` (unset): with ``EMPTY_DIR`` GDAL probes no sibling file
  anyway, and a list of extensions would make every URL that does not end with one (a signed
  URL's query, an extension-less download link) unopenable.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import rasterio

from ..config_values import is_remote

REMOTE_OPTIONS: dict[str, str] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_VERSION": "2TLS",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MAX_RETRY": "4",
    "GDAL_HTTP_RETRY_DELAY": "0.5",
    "GDAL_HTTP_CONNECTTIMEOUT": "30",
    "GDAL_HTTP_LOW_SPEED_LIMIT": "1",
    "GDAL_HTTP_LOW_SPEED_TIME": "60",
}


def remote_options() -> dict[str, str]:
    """The settings above, less any the environment or an enclosing rasterio.Env sets."""
    outer = rasterio.env.getenv() if rasterio.env.hasenv() else {}
    return {k: v for k, v in REMOTE_OPTIONS.items() if k not in os.environ and k not in outer}


def effective(name: str) -> str:
    """The value GDAL will use for one of the settings above (the user's, else ours)."""
    outer = rasterio.env.getenv() if rasterio.env.hasenv() else {}
    value = outer.get(name, os.environ.get(name, REMOTE_OPTIONS[name]))
    return str(value)


@contextlib.contextmanager
def remote_env(path: Path | str, **extra: str) -> Iterator[None]:
    """Open a raster inside this: a remote one gets the settings above (and ``extra``); a local
    file is opened as it always was."""
    if not is_remote(path):
        yield
        return
    with rasterio.Env(**remote_options(), **extra):
        yield


@dataclass(frozen=True)
class RetryPolicy:
    """The tool's own retries, where GDAL's gave up: ``tries`` attempts in all, waiting ``delay``
    seconds after the first failure, doubled after each (with jitter), at most ``cap``."""

    tries: int
    delay: float
    cap: float = 30.0


def retry_policy() -> RetryPolicy:
    """GDAL_HTTP_MAX_RETRY and GDAL_HTTP_RETRY_DELAY as GDAL sees them: the same settings
    govern both layers of retries (``GDAL_HTTP_MAX_RETRY=0`` turns both off)."""
    try:
        retries = max(0, int(effective("GDAL_HTTP_MAX_RETRY")))
    except ValueError:
        retries = int(REMOTE_OPTIONS["GDAL_HTTP_MAX_RETRY"])
    try:
        delay = max(0.0, float(effective("GDAL_HTTP_RETRY_DELAY")))
    except ValueError:
        delay = float(REMOTE_OPTIONS["GDAL_HTTP_RETRY_DELAY"])
    return RetryPolicy(tries=retries + 1, delay=delay)
