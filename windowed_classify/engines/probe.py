"""``processing.engine: auto``: threads, unless the model's predict holds the GIL.

Threads share one model and one process (least memory) and scale when ``predict`` releases
the GIL, as scikit-learn's trees, LightGBM, XGBoost, onnxruntime and the Azure AutoML
ensembles built of them do. A model written in pure Python does not: two threads then run
no faster than one, and worker processes (about 300 MB each) are the way to use the cores.
The probe measures it on the run's own rows: one predict on some rows, then the same rows
split between two threads at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from rasterio.windows import Window

# Rows of each probe call (split in two for the threads): a window's worth, as pass 2 calls
# predict. Fewer mislead: a forest's per-tree Python overhead then outweighs its native work
# (a 50-tree forest ran no faster on two threads with 8,192 rows, 1.7x faster with 65,536).
PROBE_ROWS = 1 << 16
PARALLEL = 1.3  # two threads at least this much faster than one: threads
REPEAT = 3
PATIENCE = 2.0  # seconds: a slow model is timed once, not three times


# Libraries whose predict is native code that releases the GIL (trees, boosting, linear
# algebra, onnxruntime, AutoML ensembles of them): threads without a probe, which a busy
# machine can fool (with no free core, two threads are no faster than one for any model).
NATIVE = ("sklearn", "lightgbm", "xgboost", "catboost", "azureml", "quantile_forest")


def known_native(model: Any) -> str | None:
    """The model's kind when its predict is known to release the GIL, else None."""
    from ..models.onnx_model import OnnxClassifier

    if isinstance(model, OnnxClassifier):
        return "an ONNX model (onnxruntime)"
    steps = getattr(model, "steps", None)
    parts = [step for _, step in steps] if steps else [model]
    if all(type(p).__module__.split(".")[0] in NATIVE for p in parts):
        return type(model).__name__
    return None


def probe_rows(
    read: Callable[[Window], tuple[np.ndarray, np.ndarray]],
    windows: Sequence[Window],
    rows: int = PROBE_ROWS,
) -> np.ndarray:
    """Up to ``rows`` fully valid pixels (pixels x layers), from the first windows."""
    found: list[np.ndarray] = []
    have = 0
    for window in windows[:16]:
        values, invalid = read(window)
        keep = ~invalid.any(axis=0)
        if keep.any():
            found.append(values.T[keep][: rows - have])
            have += found[-1].shape[0]
        if have >= rows:
            break
    if not found:
        return np.empty((0, 0), dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(found))


def choose_engine(
    predict: Callable[[Any], object], frame: Callable[[np.ndarray], Any], rows: np.ndarray
) -> tuple[str, str]:
    """("threads" or "processes", why): whether ``predict`` runs faster on two threads.

    ``frame(x)`` makes the model's input from rows, as pass 2 does."""
    if rows.shape[0] < 64:
        return "threads", "auto: too few valid pixels to probe the model; threads"
    whole = frame(rows)
    halves = [frame(part) for part in np.array_split(rows, 2)]
    one = two = np.inf
    # the pass 2 predicts see float32 near their maximum too: same errstate as there
    with np.errstate(over="ignore", invalid="ignore"), ThreadPoolExecutor(2) as pool:
        predict(frame(rows[:32]))  # a first call may load code or warm caches
        began = time.perf_counter()
        for _ in range(REPEAT):  # the best of each: a busy machine only ever slows a try
            start = time.perf_counter()
            predict(whole)
            one = min(one, time.perf_counter() - start)
            start = time.perf_counter()
            list(pool.map(predict, halves))
            two = min(two, time.perf_counter() - start)
            if time.perf_counter() - began > PATIENCE:
                break
    speedup = one / max(two, 1e-9)
    engine = "threads" if speedup >= PARALLEL else "processes"
    why = (
        f"auto: predict on {rows.shape[0]} rows ran {speedup:.2f}x as fast on two threads as "
        f"on one ({'releases' if engine == 'threads' else 'holds'} the GIL); {engine}"
    )
    return engine, why
