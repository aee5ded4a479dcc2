"""The read-ahead pool (inputs/readahead.py): results in the order asked, at most
``processing.read_ahead`` threads plus the caller at once, the first failure in order raised
once nothing runs any more, one after another in the caller's thread when it is off, and a
call made from one of its own threads never waits for the pool."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from windowed_classify.inputs import readahead


class Gauge:
    """Calls that record how many of them run at once, and in which thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.most = 0
        self.threads: dict[int, str] = {}  # call -> the thread that ran it
        self.finished: list[int] = []

    def call(self, i: int, seconds: float = 0.02, fail: bool = False) -> Callable[[], int]:
        def run() -> int:
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)
                self.threads[i] = threading.current_thread().name
            try:
                time.sleep(seconds)
                if fail:
                    raise ValueError(f"call {i} failed")
                return i * 10
            finally:
                with self.lock:
                    self.now -= 1
                    self.finished.append(i)

        return run


@pytest.fixture
def read_ahead(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    def set_to(n: int) -> None:
        monkeypatch.setenv(readahead.READ_AHEAD_VARIABLE, str(n))

    return set_to


def test_results_come_in_order_and_at_most_the_threads_plus_the_caller_run_at_once(
    read_ahead: Callable[[int], None],
) -> None:
    read_ahead(3)
    gauge = Gauge()
    # later calls are quicker: they finish first, their results still come in order
    calls = [gauge.call(i, 0.05 - 0.004 * i) for i in range(10)]
    assert readahead.concurrently(calls) == [i * 10 for i in range(10)]
    assert gauge.most == 4  # three I/O threads and the caller
    assert gauge.threads[0] == threading.current_thread().name  # the first: the caller's
    assert {gauge.threads[i] for i in range(1, 10)} <= {f"read-ahead_{k}" for k in range(3)}


def test_off_means_one_after_another_in_the_callers_thread(
    read_ahead: Callable[[int], None],
) -> None:
    read_ahead(0)
    gauge = Gauge()
    assert readahead.concurrently([gauge.call(i) for i in range(5)]) == [0, 10, 20, 30, 40]
    assert gauge.most == 1
    assert set(gauge.threads.values()) == {threading.current_thread().name}
    assert gauge.finished == [0, 1, 2, 3, 4]


def test_the_first_failure_in_order_is_raised_once_nothing_runs(
    read_ahead: Callable[[int], None],
) -> None:
    """A reader closes its files after a failed read: no call may still be using one."""
    read_ahead(4)
    gauge = Gauge()
    calls = [gauge.call(0, 0.01), gauge.call(1, 0.1, fail=True), gauge.call(2, 0.01, fail=True)]
    calls += [gauge.call(3, 0.3), gauge.call(4, 0.01)]
    with pytest.raises(ValueError, match="call 1 failed"):
        readahead.concurrently(calls)
    assert gauge.now == 0  # every call that started has finished


def test_a_failure_in_the_callers_own_call_waits_for_the_others(
    read_ahead: Callable[[int], None],
) -> None:
    read_ahead(2)
    gauge = Gauge()
    with pytest.raises(ValueError, match="call 0 failed"):
        readahead.concurrently([gauge.call(0, 0.01, fail=True), gauge.call(1, 0.2)])
    assert gauge.now == 0


def test_a_call_from_a_pool_thread_runs_inline_instead_of_waiting_for_the_pool(
    read_ahead: Callable[[int], None],
) -> None:
    """One I/O thread, busy with a call that itself reads several files: with a pool-in-pool
    wait it would deadlock; the inner calls run in that thread."""
    read_ahead(1)
    gauge = Gauge()
    inner = [gauge.call(i) for i in range(3)]

    def outer() -> list[int]:
        return readahead.concurrently(inner)

    result: list[Any] = readahead.concurrently([lambda: "caller", outer])
    assert result == ["caller", [0, 10, 20]]
    assert set(gauge.threads.values()) == {"read-ahead_0"}


def test_the_setting_comes_from_the_environment_else_the_configs_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from windowed_classify.config import ProcessingConfig

    monkeypatch.delenv(readahead.READ_AHEAD_VARIABLE, raising=False)
    assert readahead.threads() == ProcessingConfig().read_ahead
    readahead.configure(7)
    assert readahead.threads() == 7
    monkeypatch.setenv(readahead.READ_AHEAD_VARIABLE, "not a number")
    assert readahead.threads() == ProcessingConfig().read_ahead
