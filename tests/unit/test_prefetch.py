"""Reading the next window ahead: the local engines name to each thread's reader the item it
runs after the one it is about to run (engines/local.py), and the memory budget counts that
window (prepare.budget)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from windowed_classify.config import load_config
from windowed_classify.engines.local import SerialExecutor, ThreadExecutor
from windowed_classify.passes.executor import Executor
from windowed_classify.passes.worker import WorkerState
from windowed_classify.prepare import budget


class Job:
    """Records, per thread, each item prefetched and each item run, in order."""

    token = "job"

    def __init__(self, reads_ahead: bool = True, fail_on: int | None = None) -> None:
        self.reads_ahead = reads_ahead
        self.fail_on = fail_on
        self.lock = threading.Lock()
        self.events: dict[str, list[tuple[str, int]]] = {}
        self.now = self.most = 0

    def log(self, what: str, item: int) -> None:
        with self.lock:
            self.events.setdefault(threading.current_thread().name, []).append((what, item))

    def prefetch(self, item: int, worker: WorkerState) -> None:
        self.log("prefetch", item)

    def __call__(self, item: int, worker: WorkerState) -> int:
        self.log("run", item)
        time.sleep(0.002)
        if item == self.fail_on:
            raise ValueError(f"item {item} failed")
        return item * 10


def executors() -> Iterator[Executor]:
    yield SerialExecutor(model=None)
    yield ThreadExecutor(model=None, workers=3)


@pytest.mark.parametrize("make", [0, 1], ids=["serial", "threads"])
def test_each_thread_prefetches_the_item_it_runs_after_its_next(make: int) -> None:
    executor = list(executors())[make]
    job = Job()
    with executor:
        got = dict(executor.run(job, range(40)))
    assert got == {i: i * 10 for i in range(40)}
    runs = [i for events in job.events.values() for what, i in events if what == "run"]
    assert sorted(runs) == list(range(40))  # each item run once
    for events in job.events.values():
        ran = [i for what, i in events if what == "run"]
        for k, (what, item) in enumerate(events):
            if what == "prefetch":
                # prefetch(x) comes just before the run of this thread's current item, and x
                # is the item this thread runs after it
                assert events[k + 1][0] == "run"
                assert ran[ran.index(events[k + 1][1]) + 1] == item
        prefetched = [i for what, i in events if what == "prefetch"]
        assert prefetched == ran[1:]  # every item but a thread's first was read ahead


@pytest.mark.parametrize("make", [0, 1], ids=["serial", "threads"])
def test_a_job_that_does_not_read_ahead_is_never_asked_to(make: int) -> None:
    """Local layers, or read-ahead off: the engines run the items as they always did."""
    executor = list(executors())[make]
    job = Job(reads_ahead=False)
    with executor:
        assert sorted(dict(executor.run(job, range(10)))) == list(range(10))
    assert all(what == "run" for events in job.events.values() for what, _ in events)


def consume(executor: Executor, job: Job, items: range, stop_after: int | None) -> Any:
    """Runs the job in another thread (so that a hang fails the test instead of blocking
    it): what it got, or the error it raised."""
    out: list[Any] = []

    def target() -> None:
        try:
            for n, (item, result) in enumerate(executor.run(job, items)):
                out.append((item, result))
                if stop_after is not None and n + 1 == stop_after:
                    break  # the generator is closed: the engine stops its threads
        except BaseException as exc:
            out.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "the engine did not stop"
    return out


@pytest.mark.parametrize("make", [0, 1], ids=["serial", "threads"])
def test_a_failing_item_is_raised_and_every_thread_stops(make: int) -> None:
    executor = list(executors())[make]
    job = Job(fail_on=7)
    with executor:
        out = consume(executor, job, range(1000), None)
        assert isinstance(out[-1], ValueError) and str(out[-1]) == "item 7 failed"
        ran = sum(what == "run" for ev in job.events.values() for what, _ in ev)
        assert ran < 30  # the others stopped at once, not after the 1000 items
        # the engine is still usable
        assert sorted(dict(executor.run(Job(), range(5)))) == list(range(5))


@pytest.mark.parametrize("make", [0, 1], ids=["serial", "threads"])
def test_a_consumer_that_stops_early_stops_the_threads(make: int) -> None:
    executor = list(executors())[make]
    job = Job()
    with executor:
        out = consume(executor, job, range(1000), 5)
        assert len(out) == 5 and not any(isinstance(o, BaseException) for o in out)
        with job.lock:
            taken = sum(what == "run" for ev in job.events.values() for what, _ in ev)
        time.sleep(0.05)
        with job.lock:  # nothing runs after the consumer went away
            assert sum(what == "run" for ev in job.events.values() for what, _ in ev) == taken
        assert taken <= 5 + 2 * executor.workers  # at most the items taken ahead


# ----------------------------------------------------------------------------- the budget


def per_pixel(tmp_path: Path, remote: bool, **processing: Any) -> float:
    """The bytes a pixel of a window costs in the budget (of 100 layers, 2 workers)."""
    raw = {
        "rasters": {"folder": "cov"},
        "model": {"path": "m.pkl"},
        "output": {"path": "p.tif"},
        "processing": {"memory_mb": 4096, **processing},
    }
    cfg = load_config(raw, base_dir=tmp_path)
    max_pixels, _ = budget(cfg, 100, 5, 2, "classification", remote)
    return 0.6 * 4096 * 2**20 / 2 / max_pixels


def test_the_budget_counts_one_more_windows_stack_when_remote_layers_are_read_ahead(
    tmp_path: Path,
) -> None:
    local = per_pixel(tmp_path, remote=False)
    # the window read ahead: 100 float32 values a pixel more
    assert per_pixel(tmp_path, remote=True) - local == pytest.approx(4 * 100, abs=0.5)
    assert per_pixel(tmp_path, remote=True, read_ahead=0) == pytest.approx(local, abs=0.5)
