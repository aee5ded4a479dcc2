"""Transient failures of remote rasters: GDAL's own retries counted, the tool's retries where
GDAL gives up, and one error naming the URL and the server's answer when nothing helps.

Two layers of retries, governed by the same settings (``gdal_env.retry_policy``):

1. GDAL retries each HTTP request itself (``GDAL_HTTP_MAX_RETRY``). It says so in a warning
   ("HTTP error code: 503 - URL. Retrying again in 0.5 secs"), which rasterio logs: a filter
   on rasterio's loggers counts those per thread and keeps them off the console.
2. When GDAL gives up, the open or the window read is retried whole, with backoff (``attempt``).
   A retried open bypasses /vsicurl/'s memory of the failure (GDAL remembers a failed open and
   would answer the next one from that memory, without asking the server again).

The server's answer (HTTP status) is taken from GDAL's error text, else from GDAL's retry
warnings during the attempt, else from a HEAD request of our own (http and https URLs). A
failure the answer shows to be permanent (404, 403, ...) is not retried.

Counts: every reader keeps a ``RetryCounts`` of what happened on its calls; ``totals()`` sums all
readers of this process (a worker process has its own).
"""

from __future__ import annotations

import contextlib
import http
import logging
import random
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import rasterio
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.io import DatasetReader

from ..config_values import is_remote
from ..errors import InputError, RemoteReadError, gdal_reason
from .gdal_env import remote_env, retry_policy
from .identity import Identity
from .retrycounts import RetryCounts
from .retrycounts import tally as _tally
from .urls import gdal_path, head, http_url, is_down, set_down

log = logging.getLogger(__name__)

T = TypeVar("T")
# what rasterio raises for GDAL's errors (rasterio 1.3's RasterioIOError is not a RasterioError)
GDAL_ERRORS = (RasterioError, RasterioIOError)

# rasterio logs GDAL's messages from one of these (1.4: _err; 1.3: _env)
GDAL_LOGGERS = ("rasterio._err", "rasterio._env")
# GDAL's words for a failed request it tries again: "HTTP error code: 503 - URL. Retrying again
# in 0.5 secs", "HTTP error code for URL range A-B: 503. Retrying again ...", and (a range of a
# parallel read, which GDAL then reads again on its own) "Request for A-B failed with
# response_code=503". Its final word: "HTTP response code on URL: 404", "HTTP response code: 503".
_RETRYING = re.compile(
    r"HTTP error code(?: for \S+ range \S+)?: ?(\d+)\b.*Retrying"
    r"|Request for \S+(?: range \S+)? failed with response_code=(\d+)",
    re.DOTALL,
)
_STATUS = re.compile(r"HTTP (?:response |error )?code(?: on \S+| for \S+ range \S+)?: ?(\d{3})\b")
_RETRIED_4XX = {408, 425, 429}  # client errors that mean "later", not "never"


class _GdalHttpWatch(logging.Filter):
    """Counts GDAL's retry warnings and notes the last HTTP status GDAL reported, per thread
    (a thread runs one GDAL call at a time, so a count taken around a call is that call's)."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        retrying = _RETRYING.search(text)
        match = retrying or _STATUS.search(text)
        code = next((g for g in match.groups() if g), None) if match else None
        if code is not None and code != "0":
            self._local.status = int(code)
        if retrying:
            self._local.retries = self.retries() + 1
            return False  # counted (and summed in the report), not printed one by one
        return True

    def retries(self) -> int:
        return getattr(self._local, "retries", 0)

    def begin(self) -> None:
        self._local.status = None

    def status(self) -> int | None:
        return getattr(self._local, "status", None)


_WATCH = _GdalHttpWatch()
_WATCH_LOCK = threading.Lock()
_watching = False


def watch() -> _GdalHttpWatch:
    """The filter, installed on rasterio's loggers once per process."""
    global _watching
    with _WATCH_LOCK:
        if not _watching:
            for name in GDAL_LOGGERS:
                logging.getLogger(name).addFilter(_WATCH)
            _watching = True
    return _WATCH


def attempt(
    action: Callable[[bool], T],
    path: Path | str,
    counts: RetryCounts,
    kind: str,
    describe: Callable[[str], str],
) -> T:
    """``action(retry)`` on a remote path, tried again with backoff while it fails for a
    reason that may pass; then a RemoteReadError whose message is ``describe(why)``, ``why``
    naming the server's answer and the number of tries. ``kind``: "open" or "read"."""
    policy = retry_policy()
    down = is_down(path)  # asked once, without GDAL's retries either (see urls.is_down)
    most = 1 if down else policy.tries
    gdal = watch()
    delay = policy.delay
    tries = 0
    while True:
        tries += 1
        gdal.begin()
        before = gdal.retries()
        try:
            with _gdal_messages_logged(), _no_gdal_retries(down):
                result = action(tries > 1)
            if down:
                set_down(path, False)
            return result
        except GDAL_ERRORS as exc:
            failure: Exception = exc
        finally:
            _tally(counts, "gdal_retries", gdal.retries() - before)
        status, reason = server_answer(path, failure, gdal.status())
        if tries >= most or not transient(status):
            if transient(status):  # retried in vain: spare the next files of this host
                set_down(path, True)
            raise RemoteReadError(describe(failure_text(status, reason, tries))) from None
        _tally(counts, f"{kind}_retries", 1)
        wait = min(delay, policy.cap) * random.uniform(1.0, 1.25)
        log.info(
            "%s of %s failed (%s): try %d of %d in %.1f s",
            kind,
            path,
            failure_text(status, reason, 1),
            tries + 1,
            policy.tries,
            wait,
        )
        time.sleep(wait)
        delay *= 2


def _gdal_messages_logged() -> contextlib.AbstractContextManager[object]:
    """A rasterio environment, when the thread has none: rasterio passes GDAL's messages to
    logging (where ``watch`` counts the retries) only inside one; outside, GDAL prints them."""
    return contextlib.nullcontext() if rasterio.env.hasenv() else rasterio.Env()


def _no_gdal_retries(down: bool) -> contextlib.AbstractContextManager[object]:
    return rasterio.Env(GDAL_HTTP_MAX_RETRY="0") if down else contextlib.nullcontext()


def open_fresh(path: Path | str, retry: bool) -> dict[str, str]:
    """GDAL settings for an open: a retry must not be answered from /vsicurl/'s memory of the
    failed open. (GDAL splits this option's value at colons, so for a URL it covers every URL
    of that scheme, for this one open.)"""
    return {"CPL_VSIL_CURL_NON_CACHED": gdal_path(path)} if retry else {}


def open_remote(path: Path | str, counts: RetryCounts, opener: Callable[[], T]) -> T:
    """``opener()`` (e.g. ``rasterio.open(path)``) under the remote settings, with retries;
    a RemoteReadError "cannot open raster PATH (why)" when it keeps failing."""

    def once(retry: bool) -> T:
        with remote_env(path, **open_fresh(path, retry)):
            return opener()

    return attempt(once, path, counts, "open", lambda why: f"cannot open raster {path} ({why})")


def server_answer(
    path: Path | str, failure: BaseException, seen: int | None
) -> tuple[int | None, str]:
    """(HTTP status, GDAL's reason): the status from GDAL's message, else the one GDAL last
    reported during the attempt, else (http/https) a HEAD of the URL when it is not a success;
    the reason, when there is no status, is GDAL's text (or why the server did not answer)."""
    reason = gdal_reason(failure)
    match = _STATUS.search(reason)
    if match:
        return int(match[1]), reason
    if seen is not None:
        return seen, reason
    url = http_url(path)
    if url is not None:
        answer = head(url)
        if answer.status >= 400:
            return answer.status, reason
        if answer.status == 0:
            return None, answer.unanswered
    return None, reason


def transient(status: int | None) -> bool:
    """Worth trying again: no HTTP status (a transport error, or GDAL gave no reason), 408,
    425, 429 or a server error. Other 4xx answers (not found, forbidden) will not change."""
    if status is None:
        return True
    return status in _RETRIED_4XX or status >= 500 and status not in (501, 505)


def failure_text(status: int | None, reason: str, tries: int) -> str:
    """``HTTP 503 Service Unavailable after 5 tries``, or GDAL's reason when there is no
    status."""
    after = f" after {tries} tries" if tries > 1 else ""
    if status is None:
        return f"{reason}{after}"
    try:
        phrase = " " + http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP {status}{phrase}{after}"


def open_raster(
    path: Path | str, counts: RetryCounts | None = None, identity: Identity | None = None
) -> DatasetReader:
    """Open a raster for reading: a remote one under the remote settings and with retries
    (``counts`` tallies them); an InputError "cannot open raster PATH..." when it cannot be.
    ``identity``: the remote file's as the run knows it; GDAL's memory of an older version of
    it is forgotten first (``forget_if_changed``)."""
    if is_remote(path):
        forget_if_changed(path, identity)
        return open_remote(path, counts or RetryCounts(), lambda: rasterio.open(path))
    try:
        return rasterio.open(path)
    except GDAL_ERRORS as exc:
        raise InputError(f"cannot open raster {path}: {exc}") from None


_SEEN: dict[str, Identity] = {}  # remote path -> the identity this process last read it at
_SEEN_LOCK = threading.Lock()


def forget_if_changed(path: Path | str, identity: Identity | None) -> None:
    """GDAL keeps what it read of a remote file (headers, blocks) for the life of the process,
    and does not ask whether the file changed: when this run knows the file by another identity
    than the last one this process read it at, that memory is dropped, so a long-lived process
    (a Dask worker, a second run in one Python session) reads the new version."""
    if not identity:
        return
    key = str(path)
    with _SEEN_LOCK:
        last = _SEEN.get(key)
        _SEEN[key] = identity
    if last is not None and last != identity:
        from .gdal_vsi import clear_cache

        clear_cache(gdal_path(path))
