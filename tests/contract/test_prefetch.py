"""The next window read ahead (StackReader.prefetch), over a server on 127.0.0.1: the window
read ahead is the one read next or it is dropped, a failure in it is raised by the read of
that window, its retries are counted, and runs that read ahead give the local run's map and
medians, bit for bit."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from checks import assert_codes_equal
from helpers import read_output, run_main, write_yaml
from httpserver import RangeServer
from rasterio.windows import Window
from test_bad_data import corrupt_tile
from test_remote import GDAL_3_10, codes, make_case, medians_bits, over_http, run

from windowed_classify.config import load_config
from windowed_classify.errors import InputError
from windowed_classify.inputs import reader as reader_module
from windowed_classify.inputs.layers import Layer
from windowed_classify.inputs.reader import StackReader
from windowed_classify.inputs.windows import WindowKey, window_key
from windowed_classify.prepare import prepare

pytestmark = pytest.mark.network

# three windows of the 300 x 330 case, on its 32 x 32 tiles: a row of 64 x 64 squares
W1, W2, W3 = (Window(64 * k, 0, 64, 64) for k in range(3))


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.01")
    monkeypatch.setenv("WINDOWED_CLASSIFY_READ_AHEAD", "16")


class Reads:
    """Each remote file's read of a window: which window, in which thread, when it ended."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lock = threading.Lock()
        self.done: list[tuple[WindowKey, str, float]] = []
        real = reader_module._read_into

        def spy(values: Any, where: Any, ds: Any, layers: Any, window: Window, counts: Any) -> None:
            try:
                real(values, where, ds, layers, window, counts)
            finally:
                with self.lock:
                    self.done.append(
                        (window_key(window), threading.current_thread().name, time.monotonic())
                    )

        monkeypatch.setattr(reader_module, "_read_into", spy)

    def of(self, window: Window) -> list[tuple[str, float]]:
        with self.lock:
            return [(t, end) for key, t, end in self.done if key == window_key(window)]


def until(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.005)


def served(layers: list[Layer], server: RangeServer) -> list[Layer]:
    url = server.url
    return [dataclasses.replace(la, path=f"/vsicurl/{url}/{Path(la.path).name}") for la in layers]


@pytest.fixture
def stack(
    tmp_path: Path,
) -> tuple[Any, list[Layer], dict[WindowKey, tuple[np.ndarray, np.ndarray]]]:
    """The case, its layers, and each window's values read from the local files."""
    case = make_case(tmp_path)
    layers = prepare(load_config(case.config)).layers
    with StackReader(layers) as local:
        truth = {window_key(w): local.read(w) for w in (W1, W2, W3)}
    return case, layers, truth


def same(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray]) -> None:
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_the_window_read_ahead_is_read_while_the_caller_computes_and_read_next(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    case, layers, truth = stack
    reads = Reads(monkeypatch)
    with (
        RangeServer(case.folder, latency=0.01) as server,
        StackReader(served(layers, server)) as reader,
    ):
        reader.prefetch(W2)
        same(reader.read(W1), truth[window_key(W1)])
        # W2's files are read on the I/O threads with no call of this thread
        until(lambda: len(reads.of(W2)) == len(layers))
        assert all(t.startswith("read-ahead") for t, _ in reads.of(W2))
        reader.prefetch(W3)
        same(reader.read(W2), truth[window_key(W2)])  # taken as it was read
        assert len(reads.of(W2)) == len(layers)  # not read again
        same(reader.read(W3), truth[window_key(W3)])
        assert len(reads.of(W3)) == len(layers)
    assert len(reads.of(W1)) == len(layers)


def test_a_window_read_ahead_and_not_read_next_is_dropped(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    case, layers, truth = stack
    reads = Reads(monkeypatch)
    with (
        RangeServer(case.folder, latency=0.01) as server,
        StackReader(served(layers, server)) as reader,
    ):
        reader.prefetch(W2)
        same(reader.read(W1), truth[window_key(W1)])
        same(reader.read(W3), truth[window_key(W3)])  # not W2: W3 read now, W2 dropped
        assert len(reads.of(W3)) == len(layers)
        same(reader.read(W2), truth[window_key(W2)])  # read again, as any window
        # a prefetch of the window about to be read is no read ahead
        reader.prefetch(W1)
        same(reader.read(W1), truth[window_key(W1)])
        assert len(reads.of(W1)) == 2 * len(layers)
        reader.prefetch(W3)  # named, then the reader closed: nothing waits for it


def test_a_failure_in_a_window_read_ahead_is_raised_by_its_read_naming_the_file(
    stack: Any,
) -> None:
    """A tile of ndvi that cannot be decoded, in W2 only: W1 (read while W2 is read ahead)
    is unharmed; the read of W2 raises one line naming the file and the window; the reader
    closes at once (no I/O thread left waiting)."""
    case, layers, truth = stack
    corrupt_tile(case.folder / "ndvi.tif", 0, 2)  # pixels 64-95 of the first row of tiles
    with RangeServer(case.folder) as server:
        reader = StackReader(served(layers, server))
        try:
            reader.prefetch(W2)
            same(reader.read(W1), truth[window_key(W1)])
            with pytest.raises(InputError) as failed:
                reader.read(W2)
            message = str(failed.value)
            assert f"{server.url}/ndvi.tif" in message and "'ndvi'" in message
            assert "window" in message and "\n" not in message
            # the reader goes on: another window, the failed one again
            same(reader.read(W3), truth[window_key(W3)])
            with pytest.raises(InputError, match="ndvi"):
                reader.read(W2)
        finally:
            reader.close()


@pytest.mark.skipif(not GDAL_3_10, reason="GDAL < 3.10 does not report every failed request")
def test_the_retries_of_a_window_read_ahead_are_counted(stack: Any) -> None:
    case, layers, truth = stack
    with RangeServer(case.folder, fail_first=1) as server:
        with StackReader(served(layers, server)) as reader:
            reader.prefetch(W2)
            same(reader.read(W1), truth[window_key(W1)])
            reader.prefetch(W3)
            same(reader.read(W2), truth[window_key(W2)])
            same(reader.read(W3), truth[window_key(W3)])
            counts = reader.counts.total
        failed = server.stats["failed"]
    assert failed > 0 and counts == failed


@pytest.mark.parametrize("workers", [1, 2], ids=["serial", "threads"])
def test_runs_that_read_ahead_give_the_local_map_and_medians(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """Six files, nodata threshold 1, several windows per thread: the windows read ahead are
    the ones read (most windows were), and the map, the probabilities and every median are
    the local run's, bit for bit."""
    taken: list[bool] = []
    read = StackReader.read

    def spy(self: StackReader, window: Window) -> Any:
        ahead = self._ahead
        taken.append(ahead is not None and ahead.window == window_key(window))
        return read(self, window)

    monkeypatch.setattr(StackReader, "read", spy)
    names = ("elev", "slope", "ndvi", "twi", "clay", "sand")
    case = make_case(tmp_path, names=names)
    case.config["nodata"]["threshold"] = 1
    case.config["output"]["probabilities"] = str(case.root / "p.tif")
    case.config["processing"] |= {"workers": workers, "memory_mb": 1}
    local = run(case.config)
    taken.clear()
    with RangeServer(case.folder, latency=0.005) as server:
        config = over_http(case, server, "remote", read_ahead=16)
        config["output"]["probabilities"] = str(case.root / "out_remote" / "p.tif")
        remote = run(config)
    assert sum(taken) >= len(taken) // 2 > 0
    assert_codes_equal(codes(config), read_output(case.output)[0])
    for key in ("classes", "probabilities"):
        with rasterio.open(local["outputs"][key]) as a, rasterio.open(remote["outputs"][key]) as b:
            assert np.array_equal(a.read(), b.read(), equal_nan=True), key
    assert medians_bits(remote) == medians_bits(local)


@pytest.mark.parametrize("workers", ["1", "2"], ids=["serial", "threads"])
def test_a_run_whose_window_read_ahead_fails_is_one_error_line(
    tmp_path: Path, workers: str
) -> None:
    case = make_case(tmp_path)
    corrupt_tile(case.folder / "slope.tif", 5, 6)  # far from the first window
    with RangeServer(case.folder) as server:
        config = over_http(case, server, "remote", read_ahead=16)
        path = write_yaml(case.root / "remote.yaml", config)
        proc = run_main(path, "--quiet", "--workers", workers, cwd=case.root)
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{server.url}/slope.tif" in lines[0] and "'slope'" in lines[0]
