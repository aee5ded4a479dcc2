"""What the workers keep on disk while they read: the keys near each median (for the exact
statistics) and the rows that wait for a median to be filled (deferred fills).

A worker appends records to files of its own, under ``<folder>/<worker>/``; each record is
tagged with the item it came from (a window, a counting task). The side that adds up the
results knows which worker's result it accepted for each item: a task run twice (a worker
died after writing, before answering) leaves two records, and readers skip the one whose
item was accepted from another worker. Records are flushed as they are written, so any
process can read them once the item's result has come back.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import numpy as np

from ..errors import OutputError
from .band import BAND

HEADER = np.dtype([("item", "<i8"), ("count", "<i8")])  # every record starts with one
CHUNK = 1 << 22  # keys read at once when a record is larger (16 MB)
KEY_BYTES = np.dtype(np.uint32).itemsize  # a kept key (Spills.keys)
ROW_BYTES = np.dtype(np.int32).itemsize  # a waiting row's pixel (Spills.rows) ...
VALUE_BYTES = np.dtype(np.float32).itemsize  # ... and each of its values


def keys_bytes(valid: int, guide_share: float) -> int:
    """The statistics spill of one counted layer, about, in bytes: its keys inside the band,
    ``2 x BAND`` of its ``valid`` values (the band is that range of ranks around the guide's
    median), and every key of the guide's windows (``guide_share`` of the values: their band
    is every bin). Record headers (16 bytes an item) are left out."""
    guide = valid * min(max(guide_share, 0.0), 1.0)
    return int(KEY_BYTES * (guide + min(2 * BAND, 1.0) * (valid - guide)))


def rows_bytes(rows: int, layers: int) -> int:
    """The rows waiting for a median fill, in bytes: each row's pixel and its ``layers``
    values (``Spills.rows``)."""
    return int(rows) * (ROW_BYTES + VALUE_BYTES * layers)


def worker_folder(folder: Path, worker: str) -> Path:
    """A worker's own folder: its id made a file name (tcp://10.0.0.5:40 -> tcp-10.0.0.5-40)."""
    return folder / re.sub(r"[^A-Za-z0-9._-]+", "-", worker).strip("-")


def keys_path(folder: Path, worker: str, layer: int) -> Path:
    return worker_folder(folder, worker) / f"{layer}.keys"


def rows_path(folder: Path, worker: str) -> Path:
    return worker_folder(folder, worker) / "deferred.rows"


class Spills:
    """One worker process's files for one job; appends from several threads are safe."""

    def __init__(self, folder: Path, worker: str):
        self.folder = folder
        self.worker = worker
        self._files: dict[Path, IO[bytes]] = {}
        self._locks: dict[Path, threading.Lock] = {}
        self._lock = threading.Lock()
        self._keys: dict[int, Path] = {}  # layer -> its keys file: paths cost, made once

    def _file(self, path: Path) -> tuple[IO[bytes], threading.Lock]:
        with self._lock:
            if path not in self._files:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    self._files[path] = open(path, "ab")  # noqa: SIM115 - closed in close()
                except OSError as exc:
                    raise OutputError(f"cannot write {_what(path)} {path}: {exc}") from None
                self._locks[path] = threading.Lock()
            return self._files[path], self._locks[path]

    def _append(self, path: Path, item: int, *parts: np.ndarray, count: int) -> tuple[int, int]:
        f, lock = self._file(path)
        header = np.array([(item, count)], dtype=HEADER)
        with lock:
            try:
                offset = f.tell()
                f.write(header.tobytes())
                for part in parts:
                    f.write(np.ascontiguousarray(part).tobytes())
                f.flush()
                end = f.tell()
            except OSError as exc:
                raise OutputError(
                    f"cannot write {_what(path)} {path}: {exc}; is the disk full?"
                ) from None
        return offset, end - offset

    def keys(self, layer: int, item: int, keys: np.ndarray) -> None:
        """Keep the keys one item found inside layer ``layer``'s band."""
        if keys.size:
            path = self._keys.get(layer)
            if path is None:
                path = self._keys.setdefault(layer, keys_path(self.folder, self.worker, layer))
            self._append(path, item, keys.astype(np.uint32, copy=False), count=keys.size)

    def rows(self, item: int, pixels: np.ndarray, values: np.ndarray) -> tuple[int, int]:
        """Keep one window's rows that wait for a fill: their pixels (in the window) and their
        values (rows x layers, NaN where nodata); returns (offset, size) of the record."""
        path = rows_path(self.folder, self.worker)
        pixels = pixels.astype(np.int32, copy=False)
        values = values.astype(np.float32, copy=False)
        return self._append(path, item, pixels, values, count=pixels.size)

    def close(self) -> None:
        with self._lock:
            for f in self._files.values():
                f.close()
            self._files.clear()


def _what(path: Path) -> str:
    if path.suffix == ".keys":
        return "the statistics spill file"
    return "the spill file of rows waiting for a median fill"


def read_keys(path: Path, accepted: Callable[[int], bool]) -> Iterator[np.ndarray]:
    """The kept keys of ``path``, record by record (large ones in chunks), skipping the
    records of items accepted from another worker."""
    if not path.exists():
        return
    size = path.stat().st_size
    with open(path, "rb") as f:
        offset = 0
        while offset < size:
            header = np.fromfile(f, dtype=HEADER, count=1)
            if header.size == 0:
                return
            item, count = int(header[0]["item"]), int(header[0]["count"])
            if not accepted(item):
                f.seek(count * 4, 1)
            else:
                left = count
                while left:
                    take = min(left, CHUNK)
                    yield np.fromfile(f, dtype=np.uint32, count=take)
                    left -= take
            offset = f.tell()


def read_rows(path: Path, offset: int, layers: int) -> tuple[int, np.ndarray, np.ndarray]:
    """(item, pixels, values) of the record written at ``offset`` by ``Spills.rows``."""
    with open(path, "rb") as f:
        f.seek(offset)
        header = np.fromfile(f, dtype=HEADER, count=1)
        item, count = int(header[0]["item"]), int(header[0]["count"])
        pixels = np.fromfile(f, dtype=np.int32, count=count)
        values = np.fromfile(f, dtype=np.float32, count=count * layers).reshape(count, layers)
    return item, pixels, values
