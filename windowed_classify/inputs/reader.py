"""Read windows of the layers as float32, with their nodata masks.

A window is read as a ``(layers, pixels)`` float32 array plus a boolean nodata array of the
same shape. Nothing here holds more than one window of the stack.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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
from .readahead import concurrently
from .remote import GDAL_ERRORS, RetryCounts, attempt, open_raster
from .warp import read_warped
from .windows import window_text

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
    caller's thread. A remote file's open and reads are retried while they fail for a reason
    that may pass; ``counts`` tallies the retries on this reader (the engine can hand them to
    the report).
    """

    def __init__(self, layers: Sequence[Layer]):
        self.layers = list(layers)
        self.counts = RetryCounts()
        self._datasets: dict[Path | str, Any] = {}
        # per file: the positions in self.layers of its layers read directly (not warped)
        self._direct: dict[Path | str, list[int]] = {}
        known = {layer.path: layer.identity for layer in self.layers}
        for path in known:
            if not is_remote(path):
                try:
                    self._datasets[path] = open_raster(path, self.counts)
                except InputError:
                    self.close()
                    raise
        remote = [path for path in known if is_remote(path)]
        opened = self._concurrently([partial(_open, path, known[path]) for path in remote])
        self._datasets |= {path: ds for path, (ds, _) in zip(remote, opened, strict=True) if ds}
        failed = [error for _, error in opened if error is not None]
        if failed:
            self.close()
            raise failed[0]
        self._datasets = {path: self._datasets[path] for path in known}  # the layers' order
        for i, layer in enumerate(self.layers):
            if layer.warp is None:
                self._direct.setdefault(layer.path, []).append(i)

    def _concurrently(self, calls: Sequence[Callable[[RetryCounts], T]]) -> list[T]:
        """``call(counts)`` of each remote file at once; every retry lands in ``self.counts``
        (each call counts into its own, added here: one thread adds them up)."""
        counts = [RetryCounts() for _ in calls]
        try:
            return concurrently([partial(call, c) for call, c in zip(calls, counts, strict=True)])
        finally:
            for c in counts:
                self.counts.add(c)

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        h, w = int(window.height), int(window.width)
        values = np.empty((len(self.layers), h, w), dtype=np.float32)
        remote: list[Callable[[RetryCounts], None]] = []
        for path, where in self._direct.items():
            ds, chosen = self._datasets[path], [self.layers[i] for i in where]
            if is_remote(path):
                remote.append(partial(_read_into, values, where, ds, chosen, window))
            else:
                _read_into(values, where, ds, chosen, window, self.counts)
        for i, layer in enumerate(self.layers):
            if layer.warp is not None:
                ds = self._datasets[layer.path]
                if is_remote(layer.path):
                    remote.append(partial(_read_warped_into, values, i, ds, layer, window))
                else:
                    _read_warped_into(values, i, ds, layer, window, self.counts)
        self._concurrently(remote)
        flat = values.reshape(len(self.layers), h * w)
        invalid = np.empty(flat.shape, dtype=bool)
        for i, layer in enumerate(self.layers):
            invalid[i] = nodata_mask(flat[i], layer.nodata_values)
        return flat, invalid

    def dataset(self, name: str) -> rasterio.io.DatasetReader:
        """The open dataset of the layer called ``name`` (its file, as the run reads it)."""
        for layer in self.layers:
            if layer.name == name:
                return self._datasets[layer.path]
        raise KeyError(name)

    def close(self) -> None:
        for ds in self._datasets.values():
            ds.close()
        self._datasets = {}

    def __enter__(self) -> StackReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
