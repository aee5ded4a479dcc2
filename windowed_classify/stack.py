"""The covariate stack: discover, open, check the grid, plan windows, read windows.

A window is read as a ``(layers, pixels)`` float32 array plus a boolean nodata array of the
same shape. Nothing here holds more than one window of the stack.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window

from .align import Warp, kernel_scales, read_warped
from .config import NodataConfig, RastersConfig, is_remote
from .errors import ConfigError, InputError, gdal_reason

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Grid:
    crs: object
    transform: object
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class Layer:
    """One covariate: a single-band raster and its nodata rule (float32 values)."""

    name: str
    path: Path
    dtype: str
    block_shape: tuple[int, int]  # (rows, cols) of band 1's internal blocks
    nodata_values: tuple[float, ...]  # float32-cast values that mean nodata (NaN/inf always do)
    warp: Warp | None = None  # rasters.align: read warped onto the reference grid


class Discovered(list):
    """(feature name, path) pairs in discovery order, with the config they were found by
    (``open_layers`` takes the alignment settings from it)."""

    def __init__(self, items: Sequence[tuple[str, Path | str]], rasters: RastersConfig):
        super().__init__(items)
        self.rasters = rasters


def discover(rasters: RastersConfig, exclude: Sequence[Path] = ()) -> list[tuple[str, Path | str]]:
    """Every file under the folder (recursive) with a listed extension, sorted by relative path.

    Returns (feature name, path) pairs; two files with the same feature name is an error.
    ``exclude`` (the tool's own output, when it lies in the folder) is never a layer.
    With ``rasters.files`` instead: those, in the order given (URLs are not checked here).
    """
    if rasters.files is not None:
        return Discovered(_listed_files(rasters.files, exclude), rasters)
    folder = rasters.folder
    assert folder is not None
    if not folder.is_dir():
        raise InputError(f"rasters.folder does not exist or is not a folder: {folder}")
    skip = {p.resolve() for p in exclude}
    found = []
    for path in folder.rglob("*"):
        lower = path.name.lower()
        ext = next((e for e in rasters.extensions if lower.endswith(e)), None)
        if ext is not None and path.is_file():
            if path.resolve() in skip:
                log.info("not a layer: %s is this run's output", path)
                continue
            found.append((path.relative_to(folder).as_posix(), path, path.name[: -len(ext)]))
    found.sort(key=lambda item: item[0])
    by_name: dict[str, Path] = {}
    for _, path, name in found:
        if name in by_name:
            raise InputError(
                f"two rasters have the feature name '{name}': {by_name[name]} and {path}"
            )
        by_name[name] = path
    if not found:
        raise InputError(
            f"no rasters with extension {', '.join(rasters.extensions)} found under "
            f"rasters.folder {folder}"
        )
    return Discovered([(name, path) for _, path, name in found], rasters)


def _listed_files(
    files: Sequence[tuple[str, Path | str]], exclude: Sequence[Path]
) -> list[tuple[str, Path | str]]:
    """``rasters.files``: local files must exist; GDAL paths and URLs are opened later."""
    skip = {p.resolve() for p in exclude}
    for name, path in files:
        if is_remote(path):
            continue
        assert isinstance(path, Path)
        if not path.is_file():
            raise InputError(f"rasters.files.{name}: file not found: {path}")
        if path.resolve() in skip:
            raise InputError(f"rasters.files.{name}: {path} is this run's output, not a layer")
    return list(files)


def _float32_values(values: Sequence[float]) -> tuple[float, ...]:
    """Cast nodata values to float32 the way pixel values are; NaN and inf need no entry."""
    with np.errstate(over="ignore", invalid="ignore"):
        cast = np.asarray(values, dtype=np.float64).astype(np.float32)
    return tuple(sorted({float(v) for v in cast if np.isfinite(v)}))


def open_layers(
    named_paths: Sequence[tuple[str, Path | str]], nodata: NodataConfig
) -> tuple[Grid, list[Layer]]:
    """Open each raster's header, check it is on the grid, build its nodata rule.

    The grid is the first raster's, or with ``rasters.align`` (from ``discover``) the grid of
    ``rasters.reference`` when given; under ``rasters.align`` a layer off that grid is read
    warped onto it, otherwise it is an error naming what differs.
    """
    rasters: RastersConfig | None = getattr(named_paths, "rasters", None)
    align = rasters is not None and rasters.align
    grid: Grid | None = None
    first: Path | str | None = None
    ref_block: tuple[int, int] | None = None
    if align and rasters.reference is not None:
        try:
            grid, ref_block, _, _ = _header(rasters.reference)
        except InputError as exc:
            raise InputError(f"rasters.reference: {exc}") from None
        first = rasters.reference
    if align:
        _check_resampling_names(rasters, [name for name, _ in named_paths])
    layers = []
    for name, path in named_paths:
        this, block, dtype, file_nodata = _header(path)
        if grid is None:
            grid, first, ref_block = this, path, block
        warp = None
        if not same_grid(grid, this):
            if not align:
                _check_same_grid(grid, this, path, first)
            assert rasters is not None and ref_block is not None
            warp = Warp(
                grid.crs.to_wkt(),  # type: ignore[attr-defined]
                tuple(grid.transform)[:6],  # type: ignore[arg-type]
                grid.width,
                grid.height,
                rasters.resampling_for(name),
                *kernel_scales(
                    grid.crs, grid.transform, (grid.height, grid.width), this.crs, this.transform
                ),
            )
            block = ref_block  # windows follow the reference grid's blocks
            log.info("layer %s is warped onto the grid of %s (%s)", name, first, warp.resampling)
        values = list(nodata.values)
        if nodata.use_file_nodata and file_nodata is not None:
            values.append(file_nodata)
        layers.append(Layer(name, path, dtype, block, _float32_values(values), warp))
    assert grid is not None
    return grid, layers


def _header(path: Path | str) -> tuple[Grid, tuple[int, int], str, float | None]:
    """(grid, band 1's block shape, dtype, file nodata) of one raster."""
    try:
        with rasterio.open(path) as ds:
            return (
                Grid(ds.crs, ds.transform, ds.width, ds.height),
                (int(ds.block_shapes[0][0]), int(ds.block_shapes[0][1])),
                ds.dtypes[0],
                ds.nodatavals[0],
            )
    except RasterioError as exc:
        raise InputError(f"cannot open raster {path}: {exc}") from None


def _check_resampling_names(rasters: RastersConfig, names: Sequence[str]) -> None:
    unknown = [k for k in rasters.resampling if k != "default" and k not in set(names)]
    if unknown:
        raise ConfigError(
            f"config key 'rasters.resampling': no layer is named {', '.join(unknown)} "
            f"(layers: {', '.join(names)})"
        )


def same_grid(ref: Grid, this: Grid) -> bool:
    return (
        (ref.width, ref.height) == (this.width, this.height)
        and ref.crs == this.crs
        and this.transform.almost_equals(ref.transform, precision=1e-9)  # type: ignore[attr-defined]
    )


def _check_same_grid(ref: Grid, this: Grid, path: Path | str, first: Path | str | None) -> None:
    """A misfit raster is an error naming what differs, with both values."""
    diffs = []
    if ref.crs != this.crs:
        diffs.append(f"CRS {_crs_text(this.crs)} (expected {_crs_text(ref.crs)})")
    rt, tt = ref.transform, this.transform
    if not math.isclose(rt.a, tt.a, rel_tol=1e-9) or not math.isclose(rt.e, tt.e, rel_tol=1e-9):
        diffs.append(
            f"transform resolution {_num(tt.a)} x {_num(-tt.e)} "
            f"(expected {_num(rt.a)} x {_num(-rt.e)})"
        )
    if (rt.b, rt.d) != (tt.b, tt.d):
        diffs.append(f"transform rotation terms {(tt.b, tt.d)} (expected {(rt.b, rt.d)})")
    if not (math.isclose(rt.c, tt.c, abs_tol=1e-9) and math.isclose(rt.f, tt.f, abs_tol=1e-9)):
        diffs.append(
            f"transform origin ({_num(tt.c)}, {_num(tt.f)}) (expected ({_num(rt.c)}, {_num(rt.f)}))"
        )
    if (ref.width, ref.height) != (this.width, this.height):
        diffs.append(
            f"shape {this.width} x {this.height} pixels (expected {ref.width} x {ref.height})"
        )
    if not diffs:  # tiny transform differences beyond the tolerance
        diffs.append(f"transform {tuple(tt)[:6]} (expected {tuple(rt)[:6]})")
    raise InputError(
        f"raster {path} is not on the grid of {first}: "
        + "; ".join(diffs)
        + "; set rasters.align: true to warp it onto that grid"
    )


def _num(value: float) -> str:
    return f"{value:.10g}"


def _crs_text(crs: object) -> str:
    if crs is None:
        return "none"
    try:
        return crs.to_string()  # type: ignore[attr-defined]
    except Exception:  # pragma: no cover - exotic CRS objects
        return str(crs)


# ----------------------------------------------------------------------------- windows


def lcm(*values: int) -> int:
    out = 1
    for v in values:
        out = out * v // math.gcd(out, v)
    return out


def plan_windows(
    grid: Grid,
    block_shapes: Sequence[tuple[int, int]],
    max_pixels: int,
    out_block: int = 256,
) -> list[Window]:
    """Windows over the grid so that no input block is decoded twice and memory stays bounded.

    Heights are a multiple of the output's tile size and of every input's block height (when
    that least common multiple is reasonable); widths are the full width when any input is
    striped (so each strip is decoded once), else a multiple of the inputs' common tile width.
    ``max_pixels`` bounds a window's pixel count; windows never go below one output tile.
    """
    heights = [b[0] for b in block_shapes]
    tiled_widths = [b[1] for b in block_shapes if b[1] < grid.width]
    any_striped = len(tiled_widths) < len(block_shapes)
    max_pixels = max(max_pixels, out_block * out_block)

    # The aligned unit: a multiple of every block; fall back to the output tile (and GDAL's
    # block cache) when that unit is unreasonable or does not fit the budget.
    height = lcm(out_block, *heights)
    unit_w = lcm(out_block, *tiled_widths)
    if unit_w > 4 * out_block or out_block * unit_w > max_pixels:
        unit_w = out_block
    if height > 4 * out_block or height * min(unit_w, grid.width) > max_pixels:
        height = out_block

    height = min(height, max(grid.height, 1))
    if any_striped or grid.width <= unit_w:
        width = grid.width  # whole strips, each decoded once: lower the band, never split it
        if width * height > max_pixels:
            unit_h = min(lcm(*heights), out_block)
            height = max(unit_h, (max_pixels // width) // unit_h * unit_h)
    else:
        width = max(unit_w, (max_pixels // height) // unit_w * unit_w)
    width = min(width, grid.width)
    if width >= grid.width:  # a full-width band fits: grow it taller, in whole units
        height *= max(1, max_pixels // (height * grid.width))
        height = min(height, max(grid.height, 1))
    return [
        Window(col, row, min(width, grid.width - col), min(height, grid.height - row))
        for row in range(0, grid.height, height)
        for col in range(0, grid.width, width)
    ]


def layer_windows(grid: Grid, block: tuple[int, int], min_pixels: int = 1 << 16) -> list[Window]:
    """Windows for reading one layer alone (pass 1): whole blocks of at least ``min_pixels``.

    Small windows (a tile, or a few strips) let pass 1 draw a sample spread over the whole
    grid; each block is still decoded exactly once.
    """
    bh, bw = max(block[0], 1), max(block[1], 1)
    if bw >= grid.width:  # striped: bands of whole strips
        rows = bh * max(1, -(-min_pixels // (bh * max(grid.width, 1))))
        return [
            Window(0, r, grid.width, min(rows, grid.height - r))
            for r in range(0, grid.height, rows)
        ]
    cols = bw * max(1, -(-min_pixels // (bh * bw)))  # tiny tiles: several side by side
    return [
        Window(c, r, min(cols, grid.width - c), min(bh, grid.height - r))
        for r in range(0, grid.height, bh)
        for c in range(0, grid.width, cols)
    ]


# ----------------------------------------------------------------------------- reading


def nodata_mask(values: np.ndarray, nodata_values: Sequence[float]) -> np.ndarray:
    """True where a float32 value is NaN, +-inf, or one of the layer's nodata values."""
    invalid = ~np.isfinite(values)
    for v in nodata_values:
        invalid |= values == np.float32(v)
    return invalid


class StackReader:
    """Open datasets for a list of layers; read windows as float32 (layers, pixels)."""

    def __init__(self, layers: Sequence[Layer]):
        self.layers = list(layers)
        self._datasets: list = []
        try:
            for layer in self.layers:
                self._datasets.append(rasterio.open(layer.path))
        except RasterioError as exc:
            self.close()
            raise InputError(f"cannot open raster {layer.path}: {exc}") from None

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        h, w = int(window.height), int(window.width)
        values = np.empty((len(self.layers), h, w), dtype=np.float32)
        for i, (layer, ds) in enumerate(zip(self.layers, self._datasets, strict=True)):
            values[i] = read_band(ds, layer, window)
        values = values.reshape(len(self.layers), h * w)
        invalid = np.empty(values.shape, dtype=bool)
        for i, layer in enumerate(self.layers):
            invalid[i] = nodata_mask(values[i], layer.nodata_values)
        return values, invalid

    def close(self) -> None:
        for ds in self._datasets:
            ds.close()
        self._datasets = []

    def __enter__(self) -> StackReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_band(ds: rasterio.io.DatasetReader, layer: Layer, window: Window) -> np.ndarray:
    """Band 1 in ``window`` of the grid, cast to float32 exactly as numpy's astype does.

    A warped layer (``layer.warp``) is read around the window in its own grid and warped onto
    it: NaN where it has no valid value. A failed read (a corrupt or truncated file) is an
    InputError naming the file and the window.
    """
    if layer.warp is None:
        return _read_raw(ds, layer, window)

    def source(src_window: Window) -> np.ndarray:
        values = _read_raw(ds, layer, src_window, window)
        values[nodata_mask(values, layer.nodata_values)] = np.nan
        return values

    return read_warped(layer.warp, window, ds.crs, ds.transform, (ds.height, ds.width), source)


def window_text(window: Window) -> str:
    return (
        f"(col_off={int(window.col_off)}, row_off={int(window.row_off)}, "
        f"width={int(window.width)}, height={int(window.height)})"
    )


def _read_raw(
    ds: rasterio.io.DatasetReader, layer: Layer, window: Window, grid_window: Window | None = None
) -> np.ndarray:
    try:
        data = ds.read(1, window=window)
    except RasterioError as exc:
        where = f"window {window_text(window)}"
        if grid_window is not None:
            where = f"window {window_text(grid_window)} (its own window {window_text(window)})"
        raise InputError(
            f"cannot read raster {layer.path} (layer '{layer.name}') in {where}: {gdal_reason(exc)}"
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
