"""Progress of a pass: tqdm bars for people, JSON lines for programs, or nothing.

``--progress json`` prints, on stderr, one JSON object per line, each starting with ``{``:
``{"event": "progress", "stage": "pass1" | "pass2", "done": N, "total": N, "unit": "px",
"rate": px/s, "elapsed": s}`` when a stage starts (done 0), at most ``JSON_PER_SECOND`` times
a second while it runs, and when it ends; the CLI adds ``{"event": "finished", ...}`` after a
successful run. A front-end (the QGIS provider) reads these; the tool itself knows nothing of
its readers.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

MODES = ("bar", "json", "none")
JSON_PER_SECOND = 4
LABELS = {"pass1": "pass 1: statistics", "pass2": "pass 2: classify"}


def emit(event: dict[str, Any]) -> None:
    """One JSON line on stderr, flushed (a reader waits for whole lines)."""
    sys.stderr.write(json.dumps(event, allow_nan=False) + "\n")
    sys.stderr.flush()


class Progress:
    """A context manager with ``update(n)``: thread-safe, as workers' results arrive."""

    def __init__(self, stage: str, total: int, mode: str = "bar"):
        self.stage, self.total, self.mode = stage, int(total), mode
        self.done = 0
        self.start = time.monotonic()
        self.last = 0.0
        self.lock = threading.Lock()
        self.bar: Any = None
        if mode == "bar":
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, unit="px", unit_scale=True, desc=LABELS[stage])
        elif mode == "json":
            self._json()

    def _json(self) -> None:
        elapsed = time.monotonic() - self.start
        emit(
            {
                "event": "progress",
                "stage": self.stage,
                "done": self.done,
                "total": self.total,
                "unit": "px",
                "rate": round(self.done / elapsed, 1) if elapsed > 0 else 0.0,
                "elapsed": round(elapsed, 3),
            }
        )
        self.last = time.monotonic()

    def update(self, n: int) -> None:
        with self.lock:
            self.done += int(n)
            if self.bar is not None:
                self.bar.update(n)
            elif self.mode == "json" and time.monotonic() - self.last >= 1 / JSON_PER_SECOND:
                self._json()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.mode == "json" and exc[0] is None:
            self._json()  # the last count of the stage
