"""processing.engine auto: the probe tells a predict that releases the GIL from one that
holds it (the decision, not a duration, is asserted).

Both stand-in predicts wait rather than compute, so that the machine's load cannot decide
for them: with pure-Python work on a busy 2-core machine, two threads took turns and still
measured up to 2.5x as fast as one (the single-thread timing caught a preemption), which
flipped the decision. A lock held for the whole call serialises two threads exactly as the
GIL does a pure-Python predict; that serialisation is all the probe measures."""

from __future__ import annotations

import threading
import time

import numpy as np

from windowed_classify.engines.probe import choose_engine, probe_rows

SECONDS_PER_ROW = 5e-5  # 4,096 rows: 0.2 s, long against a loaded scheduler's hiccups
_GIL = threading.Lock()


def releases(x: np.ndarray) -> np.ndarray:
    """Waits as native code does, without the GIL: two threads wait at once (2x)."""
    time.sleep(len(x) * SECONDS_PER_ROW)
    return np.zeros(len(x))


def holds(x: np.ndarray) -> np.ndarray:
    """Holds one lock for the whole call, as pure Python holds the GIL: two threads take
    turns (1x)."""
    with _GIL:
        time.sleep(len(x) * SECONDS_PER_ROW)
    return np.zeros(len(x))


def test_a_predict_that_releases_the_gil_gets_threads() -> None:
    engine, why = choose_engine(releases, lambda x: x, np.ones((4096, 3), np.float32))
    assert engine == "threads" and "threads" in why


def test_a_predict_that_holds_the_gil_gets_processes() -> None:
    engine, why = choose_engine(holds, lambda x: x, np.ones((4096, 3), np.float32))
    assert engine == "processes" and "holds the GIL" in why


def test_too_few_valid_pixels_mean_threads() -> None:
    assert choose_engine(holds, lambda x: x, np.ones((10, 3), np.float32))[0] == "threads"


def test_probe_rows_are_fully_valid_pixels_from_the_first_windows() -> None:
    values = np.arange(12, dtype=np.float32).reshape(3, 4)  # 3 layers x 4 pixels
    invalid = np.zeros((3, 4), dtype=bool)
    invalid[1, 2] = True
    rows = probe_rows(lambda w: (values, invalid), ["w1", "w2"], rows=5)  # type: ignore[list-item]
    assert rows.shape == (5, 3)
    assert rows[:3].tolist() == [[0, 4, 8], [1, 5, 9], [3, 7, 11]]


class PurePython:
    """A model of the user's own: predict in Python."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        return holds(x)


def test_known_native_models_get_threads_without_a_probe() -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from windowed_classify.engines.probe import known_native

    assert known_native(RandomForestClassifier()) == "RandomForestClassifier"
    assert known_native(make_pipeline(StandardScaler(), RandomForestClassifier())) == "Pipeline"
    assert known_native(PurePython()) is None
    assert known_native(make_pipeline(StandardScaler(), PurePython())) is None
