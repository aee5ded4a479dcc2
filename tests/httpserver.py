"""A range-capable HTTP server on 127.0.0.1 for tests and benchmarks, in its own process.

It serves one folder the way object stores and CDNs serve Cloud-Optimised GeoTIFFs: HTTP/1.1
keep-alive, ``Range`` requests (one range -> 206; several -> 206 multipart/byteranges), and
ETag, Last-Modified and Content-Length read from the file at each request (so rewriting a
file changes its ETag). Faults can be injected: a fixed latency per request, a seeded share of
``503 Service Unavailable`` answers, a reset connection on chosen requests, the first N tries of
every distinct request (method, path, range) answered 503 (``fail_first``: deterministic,
whatever the order of the requests), every request after the Nth answered 503 (``fail_after``),
or every request answered 503 (``down``); ``validators=False`` leaves out ETag and
Last-Modified (a server that does not identify its files). Settings can change while it runs
(``set``); counts of what it served, and the most files whose requests waited their latency
at once, are shared with the caller (``stats``).

Each server answers under a path of its own (``url`` ends with it; a path without it is
served too, as an object store's bucket is): GDAL caches what /vsicurl/ read by URL for the
life of the process, so a later test whose server gets the same port must not meet an earlier
test's files in that cache.

It runs in a separate process: GDAL holds the GIL while it opens a URL, so a server thread in
the process that opens would deadlock. The process ends when the ``with`` block does, or after
``lifetime`` seconds whatever happens, and listens on loopback only.

    with RangeServer(folder, latency=0.02, fail_share=0.05) as server:
        url = f"/vsicurl/{server.url}/elev.tif"
"""

from __future__ import annotations

import email.utils
import functools
import multiprocessing
import os
import random
import re
import secrets
import socket
import struct
import threading
import time
from collections.abc import Iterable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

COUNTERS = ("requests", "ranges", "multiranges", "heads", "failed", "resets", "most_files")
BOUNDARY = "windowed_classify_byteranges"


class _Shared:
    """What the parent and the server process share: settings and counters."""

    def __init__(
        self,
        ctx: Any,
        latency: float,
        fail_share: float,
        reset_on: Iterable[int],
        fail_first: int,
        fail_after: int,
        validators: bool,
    ):
        self.port = ctx.Value("i", 0)
        self.latency = ctx.Value("d", latency)
        self.fail_share = ctx.Value("d", fail_share)
        self.fail_first = ctx.Value("i", fail_first)
        self.fail_after = ctx.Value("i", fail_after)
        self.validators = ctx.Value("b", int(validators))
        self.down = ctx.Value("b", 0)
        resets = sorted(set(reset_on))[:64]
        self.reset_on = ctx.Array("i", resets + [0] * (64 - len(resets)))
        self.counts = {name: ctx.Value("i", 0) for name in COUNTERS}


def _ranges(header: str, size: int) -> list[tuple[int, int]] | None:
    """``bytes=a-b,c-,-n`` -> [(first, last)] clipped to the file; None: not satisfiable."""
    match = re.fullmatch(r"\s*bytes\s*=\s*(.+)", header)
    if not match:
        return None
    out = []
    for part in match[1].split(","):
        first, _, last = part.strip().partition("-")
        if first == "":  # the last n bytes
            n = int(last)
            out.append((max(0, size - n), size - 1))
        elif int(first) < size:
            out.append((int(first), min(int(last), size - 1) if last else size - 1))
    return out or None


class _Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer carries a Content-Length
    shared: _Shared
    lock: threading.Lock
    draw: random.Random
    tries: dict[tuple[str, str, str], int]  # requests seen, by (method, path, Range)
    active: dict[str, int]  # requests being answered, by path
    prefix: str  # this server's own path, taken off before a file is looked up

    def translate_path(self, path: str) -> str:
        if path.startswith(self.prefix + "/"):
            path = path[len(self.prefix) :]
        return super().translate_path(path)

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _count(self, name: str) -> int:
        counter = self.shared.counts[name]
        with counter.get_lock():
            counter.value += 1
            return counter.value

    def _answer(self, body: bool) -> None:
        number = self._count("requests")
        if not body:
            self._count("heads")
        self._wait()
        self._answer_one(body, number)

    def _wait(self) -> None:
        """The latency, during which the request counts as being answered: how many files at
        once, at most. Not while the answer is written: the client may have it all and ask
        for the next file before this thread gets to say it is done."""
        most = self.shared.counts["most_files"]
        with self.lock:
            self.active[self.path] = self.active.get(self.path, 0) + 1
            with most.get_lock():
                most.value = max(most.value, len(self.active))
        try:
            if self.shared.latency.value > 0:
                time.sleep(self.shared.latency.value)
        finally:
            with self.lock:
                self.active[self.path] -= 1
                if not self.active[self.path]:
                    del self.active[self.path]

    def _answer_one(self, body: bool, number: int) -> None:
        if number in set(self.shared.reset_on):
            self._count("resets")
            self._reset()
            return
        asked = self.headers.get("Range")
        with self.lock:
            fail = self.draw.random() < self.shared.fail_share.value
            if self.shared.fail_first.value:
                key = (self.command, self.path, asked or "")
                self.tries[key] = self.tries.get(key, 0) + 1
                fail = fail or self.tries[key] <= self.shared.fail_first.value
        after = self.shared.fail_after.value
        if self.shared.down.value or fail or 0 < after < number:
            self._count("failed")
            self._plain(503, b"Service Unavailable\n", body)
            return
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self._plain(404, b"Not Found\n", body)
            return
        stat = path.stat()
        size = stat.st_size
        etag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
        headers = {"Accept-Ranges": "bytes"}
        if self.shared.validators.value:
            headers["ETag"] = etag
            headers["Last-Modified"] = email.utils.formatdate(stat.st_mtime, usegmt=True)
        if not asked:
            self._send(200, path.read_bytes(), "image/tiff", headers, body)
            return
        ranges = _ranges(asked, size)
        if ranges is None:
            headers["Content-Range"] = f"bytes */{size}"
            self._send(416, b"", "text/plain", headers, body)
            return
        self._count("ranges")
        with path.open("rb") as f:  # only the bytes asked for, as a store serves them

            def part(first: int, last: int) -> bytes:
                f.seek(first)
                return f.read(last - first + 1)

            if len(ranges) == 1:
                first, last = ranges[0]
                headers["Content-Range"] = f"bytes {first}-{last}/{size}"
                self._send(206, part(first, last), "image/tiff", headers, body)
                return
            self._count("multiranges")
            parts = []
            for first, last in ranges:
                parts.append(
                    f"--{BOUNDARY}\r\nContent-Type: image/tiff\r\n"
                    f"Content-Range: bytes {first}-{last}/{size}\r\n\r\n".encode()
                    + part(first, last)
                    + b"\r\n"
                )
        payload = b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
        kind = f"multipart/byteranges; boundary={BOUNDARY}"
        self._send(206, payload, kind, headers, body)

    def _send(
        self, status: int, payload: bytes, kind: str, headers: dict[str, str], body: bool
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(payload)

    def _plain(self, status: int, text: bytes, body: bool) -> None:
        self._send(status, text, "text/plain", {}, body)

    def _reset(self) -> None:
        """Close with a TCP RST (linger 0), as a dropped connection looks to the client."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5: when more connections arrive at once (GDAL
    # opens one per range it fetches in parallel, per reading thread), the kernel drops the
    # rest and the client waits out TCP's retransmission back-off (1, 3, 7, 15 s ...), a stall
    # no real server shows. Web servers listen with a few hundred.
    request_queue_size = 512
    daemon_threads = True


def _serve(folder: str, prefix: str, shared: _Shared, seed: int, lifetime: float) -> None:
    """The server process: answers until the parent ends it, or after ``lifetime`` seconds."""
    handler = type(
        "Handler",
        (_Handler,),
        {
            "shared": shared,
            "lock": threading.Lock(),
            "draw": random.Random(seed),
            "tries": {},
            "active": {},
            "prefix": prefix,
        },
    )
    server = _Server(("127.0.0.1", 0), functools.partial(handler, directory=folder))
    threading.Timer(lifetime, lambda: os._exit(3)).start()
    shared.port.value = server.server_address[1]
    server.serve_forever()


class RangeServer:
    """The server as a context manager: ``url`` is ``http://127.0.0.1:PORT/<its own path>``,
    ``host`` is ``127.0.0.1:PORT``."""

    def __init__(
        self,
        folder: Path | str,
        *,
        latency: float = 0.0,
        fail_share: float = 0.0,
        reset_on: Iterable[int] = (),
        fail_first: int = 0,
        fail_after: int = 0,
        validators: bool = True,
        seed: int = 0,
        lifetime: float = 900.0,
    ):
        self.folder = str(folder)
        self._ctx = multiprocessing.get_context("spawn")
        self._shared = _Shared(
            self._ctx, latency, fail_share, reset_on, fail_first, fail_after, validators
        )
        self._prefix = "/s" + secrets.token_hex(4)
        self._seed = seed
        self._lifetime = lifetime
        self._process: Any = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._shared.port.value}"

    @property
    def url(self) -> str:
        return f"http://{self.host}{self._prefix}"

    def start(self) -> RangeServer:
        self._process = self._ctx.Process(
            target=_serve,
            args=(self.folder, self._prefix, self._shared, self._seed, self._lifetime),
            daemon=True,
        )
        self._process.start()
        deadline = time.monotonic() + 60
        while not self._shared.port.value and time.monotonic() < deadline:
            if not self._process.is_alive():
                break
            time.sleep(0.02)
        if not self._shared.port.value:
            self.stop()
            raise RuntimeError("the test HTTP server did not start")
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.join(10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(5)
            self._process = None

    def set(
        self,
        *,
        latency: float | None = None,
        fail_share: float | None = None,
        fail_first: int | None = None,
        fail_after: int | None = None,
        down: bool | None = None,
    ) -> None:
        """Change how it answers from the next request on."""
        if latency is not None:
            self._shared.latency.value = latency
        if fail_share is not None:
            self._shared.fail_share.value = fail_share
        if fail_first is not None:
            self._shared.fail_first.value = fail_first
        if fail_after is not None:
            self._shared.fail_after.value = fail_after
        if down is not None:
            self._shared.down.value = int(down)

    def reset_peak(self) -> None:
        """``most_files`` counts again from now."""
        self._shared.counts["most_files"].value = 0

    @property
    def stats(self) -> dict[str, int]:
        """Requests served so far: all, ranged, multi-range, HEAD, answered 503, reset; and the
        most files whose requests waited their latency at once (``most_files``)."""
        return {name: value.value for name, value in self._shared.counts.items()}

    def __enter__(self) -> RangeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
