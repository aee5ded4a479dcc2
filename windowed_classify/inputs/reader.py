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
from rasterio.errors import RasterioError
from rasterio.windows import Window

from ..errors import InputError, gdal_reason
from .layers import Layer
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
    pixel-interleaved file decodes each block once for all of them).
    """

    def __init__(self, layers: Sequence[Layer]):
        self.layers = list(layers)
        self._datasets: dict[Path | str, Any] = {}
        # per file: the positions in self.layers of its layers read directly (not warped)
        self._direct: dict[Path | str, list[int]] = {}
        try:
            for i, layer in enumerate(self.layers):
                if layer.path not in self._datasets:
                    self._datasets[layer.path] = rasterio.open(layer.path)
                if layer.warp is None:
                    self._direct.setdefault(layer.path, []).append(i)
        except RasterioError as exc:
            self.close()
            raise InputError(f"cannot open raster {layer.path}: {exc}") from None

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        h, w = int(window.height), int(window.width)
        values = np.empty((len(self.layers), h, w), dtype=np.float32)
        for path, where in self._direct.items():
            values[where] = _read_raw(self._datasets[path], [self.layers[i] for i in where], window)
        for i, layer in enumerate(self.layers):
            if layer.warp is not None:
                values[i] = read_band(self._datasets[layer.path], layer, window)
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


def read_band(ds: rasterio.io.DatasetReader, layer: Layer, window: Window) -> np.ndarray:
    """The layer's band in ``window`` of the grid, cast to float32 as numpy's astype does.

    A warped layer (``layer.warp``) is read around the window in its own grid and warped onto
    it: NaN where it has no valid value. A failed read (a corrupt or truncated file) is an
    InputError naming the file and the window.
    """
    if layer.warp is None:
        return _read_raw(ds, [layer], window)[0]

    def source(src_window: Window) -> np.ndarray:
        values = _read_raw(ds, [layer], src_window, window)[0]
        values[nodata_mask(values, layer.nodata_values)] = np.nan
        return values

    return read_warped(layer.warp, window, ds.crs, ds.transform, (ds.height, ds.width), source)


def _read_raw(
    ds: rasterio.io.DatasetReader,
    layers: Sequence[Layer],
    window: Window,
    grid_window: Window | None = None,
) -> np.ndarray:
    """The bands of ``layers`` (all of one file) in ``window``: (bands, rows, cols) float32."""
    try:
        data = ds.read([layer.band for layer in layers], window=window)
    except RasterioError as exc:
        where = f"window {window_text(window)}"
        if grid_window is not None:
            where = f"window {window_text(grid_window)} (its own window {window_text(window)})"
        names = ", ".join(f"'{layer.name}'" for layer in layers)
        raise InputError(
            f"cannot read raster {layers[0].path} (layer {names}) in {where}: {gdal_reason(exc)}"
        ) from None
    if data.dtype != np.float32:
        with np.errstate(over="ignore", invalid="ignore"):
            data = data.astype(np.float32)
    return data


def iter_layer_values(
    layer: Layer, windows: Sequence[Window]
) -> Iterator[tuple[int, np.ndarray, int]]:
    """(window index, valid float32 values, nodata count) for each window of one layer."""
    try:
        ds = rasterio.open(layer.path)
    except RasterioError as exc:
        raise InputError(f"cannot open raster {layer.path}: {exc}") from None
    with ds:
        for i, window in enumerate(windows):
            data = read_band(ds, layer, window).ravel()
            invalid = nodata_mask(data, layer.nodata_values)
            n_invalid = int(np.count_nonzero(invalid))
            yield i, (data[~invalid] if n_invalid else data), n_invalid
