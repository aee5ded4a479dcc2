"""``check``'s remote section: for each host the model's remote layers come from, the measured
time of a header request, and what the run will ask of it: its requests, and the time it will
wait for their answers, reading one file after another and with read-ahead.

A remote read's time is mostly round trips, which is what is estimated (not bandwidth, nor the
compute the reads overlap with):

- each remote file costs a HEAD for its identity (identity.py) and an open (GDAL's HEAD and GET
  of its header) in this process; with worker processes (engine processes, dask), an open in
  each of them too (/vsicurl/ keeps what one process read of a file for its threads);
- each window costs, per file, a range request per row of the file's blocks it spans (GDAL
  merges the consecutive blocks of one row, and a window as wide as the file is one range); a
  file's requests for one window go out at once, so they cost one round trip;
- the stack is read once, or twice when pass 1 is counted apart (``Spill.reads``);
- one after another (``processing.read_ahead: 0``) a worker waits a round trip per file of its
  window; with read-ahead, the files of a window are read at once by the process's I/O threads
  (shared by the workers of a process) plus the worker's own thread.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from rasterio.windows import Window

from ..config_values import is_remote
from ..inputs.remote import failure_text
from ..inputs.urls import gdal_path, head, host_of, http_url, request_latency
from ..prepare import Plan
from .check_result import Remote, RemoteHost, Unreachable

IDENTITY_REQUESTS = 1  # the run's HEAD of a file, for its identity
OPEN_REQUESTS = 2  # GDAL's HEAD and GET of the file's header
LATENCY_TRIES = 3  # header requests timed per host (the least is taken)


@dataclass(frozen=True)
class RemoteFile:
    path: str
    block: tuple[int, int]  # (rows, cols) of its blocks


@dataclass(frozen=True)
class Workers:
    """How the run's workers share processes: ``processes`` of ``per_process`` workers each."""

    processes: int
    per_process: int

    @property
    def count(self) -> int:
        return self.processes * self.per_process

    @classmethod
    def of(cls, engine: str, workers: int) -> Workers:
        if engine in ("processes", "dask") and workers > 1:
            return cls(workers, 1)
        return cls(1, max(1, workers))


def remote_section(
    plan: Plan,
    windows: Sequence[Window] | None,
    workers: Workers,
    reads: int,
) -> Remote | None:
    """Per host of the model's remote layers (and of remote files that cannot be opened): the
    latency of a header request, and, when the run's ``windows`` are known, its requests and
    waits. None when no layer is remote."""
    files: dict[str, dict[str, RemoteFile]] = {}
    for layer in plan.layers:
        if is_remote(layer.path):
            path = str(layer.path)
            files.setdefault(host_of(path), {}).setdefault(
                path, RemoteFile(path, layer.block_shape)
            )
    unreadable = [u for u in plan.found.unreadable if is_remote(u.source.path)]
    for u in unreadable:
        files.setdefault(host_of(u.source.path), {})
    if not files:
        return None
    read_ahead = plan.config.processing.read_ahead
    hosts = []
    for host, on_host in files.items():
        bad = [u for u in unreadable if host_of(u.source.path) == host]
        probe = next(iter(on_host), None) or str(bad[0].source.path)
        seconds, status, error = _latency(probe)
        entry = RemoteHost(
            host,
            len(on_host),
            None if seconds is None else 1000 * seconds,
            status,
            error,
            [_unreachable(str(u.source.path), u.reason) for u in bad],
        )
        grid = plan.grid
        if windows and on_host and grid is not None:
            cost = run_cost(list(on_host.values()), windows, grid.width, workers, reads)
            entry.requests = cost.requests
            entry.requests_per_window = cost.requests_per_window
            if seconds is not None:
                entry.read_seconds = cost.round_trips(0) * seconds
                entry.read_ahead_seconds = cost.round_trips(read_ahead) * seconds
        hosts.append(entry)
    return Remote(read_ahead, hosts)


def window_requests(window: Window, block: tuple[int, int], width: int) -> int:
    """Range requests for one window of a file, about: one per row of blocks it spans (a row's
    blocks follow each other in a tiled GeoTIFF), one when the window or the blocks are as wide
    as the file (its rows follow each other too)."""
    rows, cols = block
    if cols >= width or int(window.width) >= width:
        return 1
    first = int(window.row_off) // rows
    last = (int(window.row_off) + int(window.height) - 1) // rows
    return last - first + 1


@dataclass(frozen=True)
class RunCost:
    """A host's part of the run: its requests, and what the waits are made of."""

    files: int
    windows: int
    reads: int  # reads of the stack
    workers: Workers
    requests: int
    requests_per_window: float

    def round_trips(self, read_ahead: int) -> float:
        """Round trips the run waits for, one worker's in parallel with the others': the
        opens in this process (then in each worker process), and the windows' reads."""
        w = self.workers
        setup = math.ceil(self.files / (read_ahead + 1))  # the preparation's I/O threads + its
        opens = setup * (IDENTITY_REQUESTS + OPEN_REQUESTS)
        if w.processes > 1:
            opens += setup * OPEN_REQUESTS
        at_once = min(self.files, read_ahead // w.per_process + 1)  # a window's files at once
        per_window = math.ceil(self.files / at_once)
        return opens + self.reads * self.windows * per_window / w.count


def run_cost(
    files: Sequence[RemoteFile],
    windows: Sequence[Window],
    width: int,
    workers: Workers,
    reads: int,
) -> RunCost:
    """The requests a run makes of one host's ``files`` (see the module's doc)."""
    per_window = [sum(window_requests(w, f.block, width) for f in files) for w in windows]
    opens = len(files) * (IDENTITY_REQUESTS + OPEN_REQUESTS)
    if workers.processes > 1:  # each worker process that gets a window opens every file
        opens += len(files) * OPEN_REQUESTS * min(workers.processes, len(windows))
    return RunCost(
        len(files),
        len(windows),
        reads,
        workers,
        opens + reads * sum(per_window),
        sum(per_window) / max(len(windows), 1),
    )


def _latency(path: str) -> tuple[float | None, int, str]:
    """(seconds, status, why no answer) of a header request of ``path``: our own HEAD for an
    http(s) URL, GDAL's (signed) for an object store path."""
    url = http_url(path)
    if url is not None:
        got = request_latency(url, LATENCY_TRIES)
        return got.seconds, got.status, got.error
    from ..inputs.gdal_vsi import file_headers

    best = None
    headers = None
    for _ in range(LATENCY_TRIES):
        start = time.perf_counter()
        headers = file_headers(gdal_path(path))
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    if headers is None:
        return None, 0, "GDAL gives no headers for it"
    return best, 200, ""


def _unreachable(path: str, reason: str) -> Unreachable:
    """A file that cannot be opened, named with its server's answer to a HEAD (http and https;
    for an object store, GDAL's reason)."""
    url = http_url(path)
    if url is None:
        return Unreachable(path, 0, reason)
    answer = head(url)
    if answer.status == 0:
        return Unreachable(path, 0, answer.unanswered)
    if answer.status >= 400:
        return Unreachable(path, answer.status, failure_text(answer.status, "", 1))
    # the server answers, but the file is not a raster GDAL reads: GDAL's words
    return Unreachable(path, answer.status, reason)
