"""Peak memory of the run: this process, its largest worker, and the whole process tree.

``getrusage`` gives the peak of one process; with worker processes the number a user compares
with the notebook is the tree's summed RSS, which is sampled here from /proc (Linux).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


def rusage_peaks_mb() -> tuple[float | None, float | None]:
    """(peak RSS of this process, of its largest finished child) in MB, from getrusage."""
    try:
        import resource
    except ImportError:  # Windows
        return None, None
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KB elsewhere
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale / 2**20
    return round(own, 1), (round(kids, 1) if kids else None)


class TreeMemoryMonitor:
    """Samples the summed RSS of this process and its live children every ``interval`` s."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.peak = 0
        self.enabled = os.path.exists(f"/proc/{os.getpid()}/statm")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-monitor", daemon=True)

    def sample(self) -> int:
        pids = [os.getpid(), *(p.pid for p in multiprocessing.active_children() if p.pid)]
        total = sum(_rss_bytes(pid) for pid in pids)
        self.peak = max(self.peak, total)
        return total

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> TreeMemoryMonitor:
        if self.enabled:
            self.sample()
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._stop.set()
            self._thread.join()
            self.sample()

    @property
    def peak_mb(self) -> float | None:
        return round(self.peak / 2**20, 1) if self.enabled else None
