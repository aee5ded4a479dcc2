"""A preload for the test cluster's Dask workers (``dask worker --preload THIS_FILE``): makes
one kind of the tool's work slow while a test asks, so that it can kill a worker while that
kind of item runs (tests/contract/test_dask_failures.py).

``WC_TEST_SLOW_DIR`` names a folder; while a file named after a job class is in it (say
``SelectJob``, holding ``1.5``), every item of that job sleeps that many seconds on these
workers before it runs. The tool's code is not changed: only the timing of its items.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

JOBS = ("GuideJob", "CountJob", "RecountJob", "SelectJob", "HistogramJob", "PredictJob", "FillJob")


def dask_setup(worker: Any) -> None:
    folder = os.environ.get("WC_TEST_SLOW_DIR")
    if not folder:
        return
    from windowed_classify.passes import counting, guide, window

    for module in (counting, guide, window):
        for name in JOBS:
            cls = getattr(module, name, None)
            if isinstance(cls, type) and cls.__module__ == module.__name__:
                _slow_down(cls, Path(folder) / name)


def _slow_down(cls: type, flag: Path) -> None:
    if getattr(cls, "_slowed", False):
        return
    real = cls.__call__

    def call(self: Any, item: Any, worker: Any) -> Any:
        try:
            seconds = float(flag.read_text())
        except (OSError, ValueError):
            seconds = 0.0
        if seconds > 0:
            time.sleep(seconds)
        return real(self, item, worker)

    cls.__call__ = call  # type: ignore[method-assign]
    cls._slowed = True  # type: ignore[attr-defined]
