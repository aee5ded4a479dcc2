"""Remote paths: the URL behind a GDAL path, and what an HTTP server says of it (HEAD).

GDAL names a remote file by a virtual path (``/vsicurl/https://...``, ``/vsicurl?url=...``,
``/vsis3/bucket/key``); rasterio also takes plain URLs (``https://...``, ``s3://...``).
"""

from __future__ import annotations

import http.client
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .._version import __version__

HEAD_TIMEOUT = 20.0  # seconds; a HEAD is one small round trip
USER_AGENT = f"windowed_classify/{__version__}"
_SCHEMES = {"http": "/vsicurl/", "https": "/vsicurl/", "s3": "/vsis3/", "gs": "/vsigs/"}


def http_url(path: Path | str) -> str | None:
    """The http(s) URL a path reads, or None (a local file, an object store path)."""
    if not isinstance(path, str):
        return None
    text = path.strip()
    if text.startswith("/vsicurl/"):
        text = text[len("/vsicurl/") :]
    elif text.startswith("/vsicurl?"):
        query = urllib.parse.parse_qs(text[len("/vsicurl?") :])
        text = query.get("url", [""])[0]
    return text if re.match(r"https?://", text, re.IGNORECASE) else None


def gdal_path(path: Path | str) -> str:
    """The GDAL virtual path of a remote path (``https://x`` -> ``/vsicurl/https://x``)."""
    text = str(path)
    match = re.match(r"([a-z][a-z0-9+.-]*)://", text, re.IGNORECASE)
    if match and match[1].lower() in _SCHEMES:
        scheme = match[1].lower()
        rest = text if scheme in ("http", "https") else text[match.end() :]
        return _SCHEMES[scheme] + rest
    return text


@dataclass(frozen=True)
class HeadAnswer:
    """A server's answer to HEAD (status 0: no answer; ``error`` says why)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    error: str = ""

    @property
    def unanswered(self) -> str:
        """Why the server gave no answer, in words (status 0)."""
        return f"no answer from the server: {self.error}"


def head(url: str, timeout: float = HEAD_TIMEOUT) -> HeadAnswer:
    """HEAD ``url`` (redirects followed); a server that refuses HEAD (405, 501) is asked for its
    first byte instead, which carries the same validators."""
    answer = _ask(url, "HEAD", timeout)
    if answer.status in (405, 501):
        answer = _ask(url, "GET", timeout, {"Range": "bytes=0-0"})
    return answer


def _ask(url: str, method: str, timeout: float, extra: dict[str, str] | None = None) -> HeadAnswer:
    headers = {"User-Agent": USER_AGENT, **(extra or {})}
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            got = {k.lower(): v for k, v in response.headers.items()}
            if response.status == 206:  # Content-Range: bytes 0-0/SIZE -> the file's size
                total = got.get("content-range", "").rpartition("/")[2]
                if total.isdigit():
                    got["content-length"] = total
            return HeadAnswer(response.status, got)
    except urllib.error.HTTPError as exc:
        return HeadAnswer(exc.code, {k.lower(): v for k, v in exc.headers.items()})
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        return HeadAnswer(0, error=_why(exc))


def _why(exc: BaseException) -> str:
    """Why a request got no answer, on one line (a URLError's reason, else the error's text)."""
    reason = getattr(exc, "reason", exc)
    return " ".join(str(reason).split()) or type(exc).__name__


@dataclass(frozen=True)
class Latency:
    """How long a header request to a server takes on an open connection (None: no answer),
    and its answer (status 0: none; ``error`` says why)."""

    seconds: float | None
    status: int
    error: str = ""


def request_latency(url: str, tries: int = 3, timeout: float = HEAD_TIMEOUT) -> Latency:
    """The least time of ``tries`` HEADs of ``url`` on one kept-alive connection, after one
    that opens it: what each of GDAL's requests costs on its own kept-alive connections (a
    new connection would add its handshakes)."""
    parts = urllib.parse.urlsplit(url)
    kind = (
        http.client.HTTPSConnection
        if parts.scheme.lower() == "https"
        else http.client.HTTPConnection
    )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"User-Agent": USER_AGENT}
    conn = kind(parts.netloc, timeout=timeout)
    times: list[float] = []
    status = 0
    error = ""
    try:
        for _ in range(tries + 1):
            start = time.perf_counter()
            conn.request("HEAD", target, headers=headers)
            response = conn.getresponse()
            response.read()
            times.append(time.perf_counter() - start)
            status = response.status
            if response.will_close:  # no second request on this connection
                break
    except (http.client.HTTPException, OSError, ValueError) as exc:
        error = _why(exc)
    finally:
        conn.close()
    kept = times[1:] or times  # the first opened the connection
    return Latency(min(kept) if kept else None, status, error)


DOWN_SECONDS = 300.0  # how long a host that failed a whole round of retries is spared them
_DOWN: dict[str, float] = {}  # host -> when it failed a whole round of retries
_DOWN_LOCK = threading.Lock()


def host_of(path: Path | str) -> str:
    """Where a remote path is served from: an http(s) URL's host, else the store and bucket
    (``/vsis3/bucket``)."""
    url = http_url(path)
    if url is not None:
        return urllib.parse.urlsplit(url).netloc.lower()
    return "/".join(gdal_path(path).split("/")[:3])


def is_down(path: Path | str) -> bool:
    """The host gave no good answer through a whole round of retries, and none since (in the
    last ``DOWN_SECONDS``): it is asked once per file, without retries, so that a dead host
    costs one round of retries, not one per file."""
    with _DOWN_LOCK:
        since = _DOWN.get(host_of(path))
    return since is not None and time.monotonic() - since < DOWN_SECONDS


def set_down(path: Path | str, down: bool) -> None:
    with _DOWN_LOCK:
        if down:
            _DOWN[host_of(path)] = time.monotonic()
        else:
            _DOWN.pop(host_of(path), None)
