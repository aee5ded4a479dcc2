"""Read windows of the layers as float32, with their nodata masks.

A window is read as a ``(layers, pixels)`` float32 array plus a boolean nodata array of the
same shape. Nothing here holds more than one window of the stack.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import rasterio
from rasterio.windows import Window

from ..config_values import is_remote
from ..errors import InputError, gdal_reason
from .identity import Identity
from .layers import Layer
from .readahead import Started, concurrently, start, threads
from .remote import GDAL_ERRORS, RetryCounts, attempt, open_raster
from .warp import read_warped
from .windows import WindowKey, window_key, window_text

T = TypeVar("T")


def nodata_mask(values: np.ndarray, nodata_values: Sequence[float]) -> np.ndarray:
    """True where a float32 value is NaN, +-inf, or one of the layer's nodata values."""
    invalid = ~np.isfinite(values)
    for v in nodata_values:
        invalid |= values == np.float32(v)
    return invalid


class StackReader:
    """Open datasets for a list of layers; read windows as float32 (layers, pixels).

    Each file is opened once; the bands one file contributes are read in one call (a
    pixel-interleaved file decodes each block once for all of them). Remote files are opened
    and read at once on this process's I/O threads (readahead.py), local files in the
    caller's thread. ``prefetch`` names the window the caller will read after the next one:
    its remote files are read on the I/O threads while the caller computes the next one. A
    remote file's open and reads are retried while they fail for a reason that may pass;
    ``counts`` tallies the retries on this reader (the engine can hand them to the report).

    A reader belongs to one thread. A remote file has two handles: the window being read and
    the window read ahead use different ones, and one window's reads of a file are one task,
    so a handle is used by one thread at a time.
    """

    def __init__(self, layers: Sequence[Layer]):
        self.layers = list(layers)
        self.counts = RetryCounts()
        self._datasets: dict[Path | str, Any] = {}
        # per file: the positions in self.layers of its layers read directly, and warped
        self._direct: dict[Path | str, list[int]] = {}
        self._warped: dict[Path | str, list[int]] = {}
        self._identity = {layer.path: layer.identity for layer in self.layers}
        self._remote = [path for path in self._identity if is_remote(path)]
        self._local = [path for path in self._identity if not is_remote(path)]
        # the remote files' handles, twice: the second set opened as a read ahead needs them
        self._handles: tuple[dict[Path | str, Any], dict[Path | str, Any]] = ({}, {})
        self._ahead: _Reads | None = None  # the window being read ahead
        self._queued: WindowKey | None = None  # the window to read ahead from the next read
        for path in self._local:
            try:
                self._datasets[path] = open_raster(path, self.counts)
            except InputError:
                self.close()
                raise
        opened = self._concurrently(
            [partial(_open, path, self._identity[path]) for path in self._remote]
        )
        self._datasets |= {p: ds for p, (ds, _) in zip(self._remote, opened, strict=True) if ds}
        failed = [error for _, error in opened if error is not None]
        if failed:
            self.close()
            raise failed[0]
        self._datasets = {path: self._datasets[path] for path in self._identity}  # layers' order
        self._handles[0].update((path, self._datasets[path]) for path in self._remote)
        for i, layer in enumerate(self.layers):
            table = self._direct if layer.warp is None else self._warped
            table.setdefault(layer.path, []).append(i)

    def _concurrently(self, calls: Sequence[Callable[[RetryCounts], T]]) -> list[T]:
        """``call(counts)`` of each remote file at once; every retry lands in ``self.counts``
        (each call counts into its own, added here: one thread adds them up)."""
        counts = [RetryCounts() for _ in calls]
        try:
            return concurrently([partial(call, c) for call, c in zip(calls, counts, strict=True)])
        finally:
            for c in counts:
                self.counts.add(c)

    def prefetch(self, window: Window) -> None:
        """Have ``window`` read ahead: its remote files are read on the I/O threads from the
        next ``read`` (of another window) on, for the ``read`` after it. One window at a time
        (memory for one more window's values); a window read ahead and not read next is
        dropped; a failure is raised by the ``read`` of that window. Nothing to do for local
        files, or with read-ahead off."""
        if self._remote and threads() > 0:
            self._queued = window_key(window)

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        key = window_key(window)
        h, w = int(window.height), int(window.width)
        reads, self._ahead = self._ahead, None
        if reads is not None and reads.window != key:
            self._drop(reads)  # the caller went another way
            reads = None
        if reads is None:
            reads = self._start(key, 0)
        queued, self._queued = self._queued, None
        if queued is not None and queued != key:  # behind this window's reads, on the others
            self._ahead = self._start(queued, 1 - reads.handles)
        try:  # this thread reads the local files while the I/O threads read the remote ones
            for path in self._local:
                self._read_file(reads.values, window, path, self._datasets, self.counts)
        except BaseException:
            self._drop(reads)
            raise
        try:
            reads.started.wait()
        finally:
            self._count(reads)
        values = reads.values.reshape(len(self.layers), h * w)
        invalid = np.empty(values.shape, dtype=bool)
        for i, layer in enumerate(self.layers):
            invalid[i] = nodata_mask(values[i], layer.nodata_values)
        return values, invalid

    def _start(self, key: WindowKey, handles: int) -> _Reads:
        """The reads of a window's remote files started, one task per file, on a set of
        handles."""
        window = Window(*key)
        values = np.empty((len(self.layers), int(window.height), int(window.width)), np.float32)
        table = self._handles[handles]
        counts = [RetryCounts() for _ in self._remote]
        started = start(
            [
                partial(self._read_file, values, window, path, table, c)
                for path, c in zip(self._remote, counts, strict=True)
            ]
        )
        return _Reads(key, values, handles, started, counts)

    def _read_file(
        self,
        values: np.ndarray,
        window: Window,
        path: Path | str,
        handles: dict[Path | str, Any],
        counts: RetryCounts,
    ) -> None:
        """Every layer of one file in ``window`` into its rows of ``values``."""
        ds = handles.get(path)
        if ds is None:  # a remote file's second handle, opened by its first read ahead
            ds = handles[path] = open_raster(path, counts, self._identity[path])
        where = self._direct.get(path)
        if where:
            _read_into(values, where, ds, [self.layers[i] for i in where], window, counts)
        for i in self._warped.get(path, ()):
            _read_warped_into(values, i, ds, self.layers[i], window, counts)

    def _count(self, reads: _Reads) -> None:
        for c in reads.counts:
            self.counts.add(c)

    def _drop(self, reads: _Reads) -> None:
        """Give up a window's reads: returns once none of them runs."""
        reads.started.cancel()
        self._count(reads)

    def dataset(self, name: str) -> rasterio.io.DatasetReader:
        """The open dataset of the layer called ``name`` (its file, as the run reads it)."""
        if self._ahead is not None:  # it may be reading with this handle
            self._drop(self._ahead)
            self._ahead = None
        for layer in self.layers:
            if layer.name == name:
                return self._datasets[layer.path]
        raise KeyError(name)

    def close(self) -> None:
        if self._ahead is not None:
            self._drop(self._ahead)  # no I/O thread may still use a handle
        self._ahead, self._queued = None, None
        for ds in [*self._datasets.values(), *self._handles[1].values()]:
            ds.close()
        self._datasets = {}
        for table in self._handles:
            table.clear()

    def __enter__(self) -> StackReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class _Reads:
    """A window's remote reads, started: its values (remote rows filled as they end)."""

    window: WindowKey
    values: np.ndarray
    handles: int  # which set of handles they use
    started: Started
    counts: list[RetryCounts]


def _open(
    path: Path | str, identity: Identity | None, counts: RetryCounts
) -> tuple[Any, InputError | None]:
    """(dataset, None), or (None, why): the files that did open are closed by the caller."""
    try:
        return open_raster(path, counts, identity), None
    except InputError as exc:
        return None, exc


def _read_into(
    values: np.ndarray,
    where: list[int],
    ds: rasterio.io.DatasetReader,
    layers: Sequence[Layer],
    window: Window,
    counts: RetryCounts,
) -> None:
    """The bands of ``layers`` (one file's) into their rows of the window's ``values``:
    float32 bands in consecutive rows straight into them (no copy), others through an array
    of their own type cast as numpy casts."""
    first = where[0]
    if where == list(range(first, first + len(where))) and all(
        layer.dtype == "float32" for layer in layers
    ):
        _read_raw(ds, layers, window, counts=counts, out=values[first : first + len(where)])
    else:
        values[where] = _read_raw(ds, layers, window, counts=counts)


def _read_warped_into(
    values: np.ndarray,
    row: int,
    ds: rasterio.io.DatasetReader,
    layer: Layer,
    window: Window,
    counts: RetryCounts,
) -> None:
    values[row] = read_band(ds, layer, window, counts)


def read_band(
    ds: rasterio.io.DatasetReader,
    layer: Layer,
    window: Window,
    counts: RetryCounts | None = None,
) -> np.ndarray:
    """The layer's band in ``window`` of the grid, cast to float32 as numpy's astype does.

    A warped layer (``layer.warp``) is read around the window in its own grid and warped onto
    it: NaN where it has no valid value. A failed read (a corrupt or truncated file) is an
    InputError naming the file and the window; a remote file's read is retried first
    (``counts`` tallies the retries).
    """
    if layer.warp is None:
        return _read_raw(ds, [layer], window, counts=counts)[0]

    def source(src_window: Window) -> np.ndarray:
        values = _read_raw(ds, [layer], src_window, window, counts)[0]
        values[nodata_mask(values, layer.nodata_values)] = np.nan
        return values

    return read_warped(layer.warp, window, ds.crs, ds.transform, (ds.height, ds.width), source)


def _read_raw(
    ds: rasterio.io.DatasetReader,
    layers: Sequence[Layer],
    window: Window,
    grid_window: Window | None = None,
    counts: RetryCounts | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The bands of ``layers`` (all of one file) in ``window``: (bands, rows, cols) float32
    (``out``: float32 bands read into that array, returned)."""
    bands = [layer.band for layer in layers]
    path = layers[0].path

    def names() -> str:  # for messages only
        return ", ".join(f"'{layer.name}'" for layer in layers)

    def where() -> str:
        if grid_window is None:
            return f"window {window_text(window)}"
        return f"window {window_text(grid_window)} (its own window {window_text(window)})"

    if is_remote(path):
        data = attempt(
            lambda retry: ds.read(bands, window=window, out=out),
            path,
            counts if counts is not None else RetryCounts(),
            "read",
            lambda why: f"cannot read {path} ({why}): layer {names()} in {where()}",
        )
    else:
        try:
            data = ds.read(bands, window=window, out=out)
        except GDAL_ERRORS as exc:
            raise InputError(
                f"cannot read raster {path} (layer {names()}) in {where()}: {gdal_reason(exc)}"
            ) from None
    if data.dtype != np.float32:
        with np.errstate(over="ignore", invalid="ignore"):
            data = data.astype(np.float32)
    return data


def iter_layer_values(
    layer: Layer, windows: Sequence[Window], counts: RetryCounts | None = None
) -> Iterator[tuple[int, np.ndarray, int]]:
    """(window index, valid float32 values, nodata count) for each window of one layer
    (``counts`` tallies the retries of a remote layer)."""
    counts = counts if counts is not None else RetryCounts()
    with open_raster(layer.path, counts, layer.identity) as ds:
        for i, window in enumerate(windows):
            data = read_band(ds, layer, window, counts).ravel()
            invalid = nodata_mask(data, layer.nodata_values)
            n_invalid = int(np.count_nonzero(invalid))
            yield i, (data[~invalid] if n_invalid else data), n_invalid
