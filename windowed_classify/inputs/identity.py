"""What identifies a layer's content, so that the statistics cache and the resume journal notice a
changed file.

- A local file: its resolved path, size and modification time (ns).
- An http(s) URL (``/vsicurl/https://...``, ``https://...``): the URL plus what the server says
  of it in answer to a HEAD: ETag, Last-Modified, Content-Length.
- An object store path GDAL signs (``/vsis3/``, ``/vsigs/``, ``/vsiaz/``, ...): the path plus the
  same headers, from GDAL's own HEAD (``gdal_vsi``), with the user's credentials.

A remote file is identified only when the server sends an ETag or a Last-Modified: a size alone
would miss a same-size rewrite. Without them (or without an answer) its identity is None: its
statistics are not cached and an interrupted run over it cannot be resumed, and a log line says
so. What is not noticed: a server that changes a file but keeps its ETag and Last-Modified (a
misconfigured cache), and a change between the HEAD and the reads of one run.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from ..config_values import is_remote
from .gdal_env import retry_policy
from .retrycounts import head_retried
from .urls import HeadAnswer, gdal_path, head, http_url, is_down

log = logging.getLogger(__name__)

_TOLD: set[str] = set()  # paths whose missing identity was logged (once per process)
_TOLD_LOCK = threading.Lock()


# A remote file's identity as a Layer carries it (hashable, picklable): the items of the dict
# ``file_identity`` gives; () when the server does not identify the file.
Identity = tuple[tuple[str, Any], ...]


def remote_identity(path: Path | str) -> Identity | None:
    """A remote file's identity as a Layer carries it, () when there is none; None for a
    local file (its identity is read when needed)."""
    if not is_remote(path):
        return None
    found = file_identity(path)
    return tuple(found.items()) if found is not None else ()


def identity_of(path: Path | str, known: Identity | None = None) -> dict[str, Any] | None:
    """A file's identity (``file_identity``), or the remote identity already read at
    discovery (``known``), so that one run asks the server once."""
    if known is not None and is_remote(path):
        return dict(known) or None
    return file_identity(path)


def file_identity(path: Path | str) -> dict[str, Any] | None:
    """A local file's resolved path, size and mtime_ns (OSError when it is missing); a remote
    file's path with its ETag, Last-Modified and Content-Length, or None when the server does
    not say enough (logged once)."""
    if not is_remote(path):
        return local_identity(Path(path))
    text = str(path)
    url = http_url(text)
    if url is not None:
        answer = _head(url)
        headers = answer.headers if 200 <= answer.status < 300 else None
        why = f"HEAD {url} answered {answer.status or answer.error}"
    else:
        from .gdal_vsi import file_headers

        headers = file_headers(gdal_path(text))
        why = "GDAL gives no headers for it"
    if headers is not None:
        ident = {
            "path": text,
            "etag": headers.get("etag"),
            "last_modified": headers.get("last-modified"),
            "size": _size(headers),
        }
        if ident["etag"] or ident["last_modified"]:
            return ident
        why = "the server sends neither ETag nor Last-Modified"
    _tell(text, why)
    return None


def local_identity(path: Path) -> dict[str, Any]:
    """A local file's resolved path, size and mtime_ns (OSError when it is missing)."""
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _head(url: str) -> HeadAnswer:
    """HEAD with the remote retry settings (a 503 now and then must not cost the cache)."""
    policy = retry_policy()
    delay = policy.delay
    answer = head(url)
    for _ in range(0 if is_down(url) else policy.tries - 1):
        if answer.status != 0 and answer.status not in (408, 429) and answer.status < 500:
            break
        time.sleep(min(delay, policy.cap))
        delay *= 2
        head_retried()
        answer = head(url)
    return answer


def _size(headers: dict[str, str]) -> int | None:
    """The file's size: a ranged answer's total (``Content-Range: bytes 0-16383/45392``; GDAL
    may GET the first bytes rather than HEAD), else Content-Length."""
    text = headers.get("content-range", "").rpartition("/")[2] or headers.get("content-length")
    return int(text) if text is not None and text.strip().isdigit() else None


def _tell(path: str, why: str) -> None:
    with _TOLD_LOCK:
        if path in _TOLD:
            return
        _TOLD.add(path)
    log.warning(
        "no identity for %s (%s): its statistics are not cached, and a run over it cannot be "
        "resumed",
        path,
        why,
    )
