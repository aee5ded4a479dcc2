"""Read windows of the layers as float32, with their nodata masks.

A window is read as a ``(layers, pixels)`` float32 array plus a boolean nodata array of the
same shape. Nothing here holds more than one window of the stack.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from ..config_values import is_remote
from ..errors import InputError, gdal_reason
from .layers import Layer
from .remote import GDAL_ERRORS, RetryCounts, attempt, open_raster
from .warp import read_warped
from .windows import window_text


def nodata_mask(values: np.ndarray, nodata_values: Sequence[float]) -> np.ndarray:
    """True where a float32 value is NaN, +-inf, or one of the layer's nodata values."""
    invalid = ~np.isfinite(values)
    for v in nodata_values:
        invalid |= values == np.float32(v)
    return invalid


class StackReader:
    """Open datasets for a list of layers; read windows as float32 (layers, pixels).

    Each file is opened once; the bands one file contributes are read in one call (a
    pixel-interleaved file decodes each block once for all of them). A remote file's open and
    reads are retried while they fail for a reason that may pass; ``counts`` tallies the
    retries on this reader (the engine can hand them to the report).
    """

    def __init__(self, layers: Sequence[Layer]):
        self.layers = list(layers)
        self.counts = RetryCounts()
        self._datasets: dict[Path | str, Any] = {}
        # per file: the positions in self.layers of its layers read directly (not warped)
        self._direct: dict[Path | str, list[int]] = {}
        try:
            for i, layer in enumerate(self.layers):
                if layer.path not in self._datasets:
                    path, known = layer.path, layer.identity
                    self._datasets[path] = open_raster(path, self.counts, known)
                if layer.warp is None:
                    self._direct.setdefault(layer.path, []).append(i)
        except InputError:
            self.close()
            raise

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        h, w = int(window.height), int(window.width)
        values: np.ndarray = np.empty((len(self.layers), h, w), dtype=np.float32)
        for path, where in self._direct.items():
            chosen = [self.layers[i] for i in where]
            values[where] = _read_raw(self._datasets[path], chosen, window, counts=self.counts)
        for i, layer in enumerate(self.layers):
            if layer.warp is not None:
                values[i] = read_band(self._datasets[layer.path], layer, window, self.counts)
        values = values.reshape(len(self.layers), h * w)
        invalid = np.empty(values.shape, dtype=bool)
        for i, layer in enumerate(self.layers):
            invalid[i] = nodata_mask(values[i], layer.nodata_values)
        return values, invalid

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
) -> np.ndarray:
    """The bands of ``layers`` (all of one file) in ``window``: (bands, rows, cols) float32."""
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
            lambda retry: ds.read(bands, window=window),
            path,
            counts if counts is not None else RetryCounts(),
            "read",
            lambda why: f"cannot read {path} ({why}): layer {names()} in {where()}",
        )
    else:
        try:
            data = ds.read(bands, window=window)
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
