"""The layers: every band of every input file, named; the reference grid of the model's layers;
each layer's nodata rule.

Only headers are read here; pixels are read by ``reader``. A file the model does not use is
never required to be readable, georeferenced or on the grid.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from ..config import NodataConfig, RastersConfig
from ..errors import ConfigError, InputError
from .discover import Source
from .grid import Grid, crs_text, grid_differences, grid_text, same_grid
from .identity import Identity, remote_identity
from .remote import GDAL_ERRORS, open_raster
from .warp import Warp, kernel_scales

log = logging.getLogger(__name__)

ASSIGN_CRS = "assign the missing CRS, e.g. gdal_edit.py -a_srs EPSG:XXXX FILE"


@dataclass(frozen=True)
class Layer:
    """One covariate as a run reads it: a band of a raster and its nodata rule (float32)."""

    name: str
    path: Path | str
    dtype: str
    block_shape: tuple[int, int]  # (rows, cols) of the band's internal blocks
    nodata_values: tuple[float, ...]  # float32-cast values that mean nodata (NaN/inf always do)
    warp: Warp | None = None  # rasters.align: read warped onto the reference grid
    band: int = 1  # 1-based band of the file
    identity: Identity | None = None  # a remote file's, read once at discovery (identity.py)


@dataclass(frozen=True)
class Band:
    """One band of an input file, as its header describes it (nothing checked yet)."""

    name: str
    source: Source
    index: int  # 1-based band number in the file
    count: int  # bands in the file
    dtype: str
    block_shape: tuple[int, int]
    file_nodata: float | None
    grid: Grid
    identity: Identity | None = None  # a remote file's (identity.py)

    @property
    def path(self) -> Path | str:
        return self.source.path

    @property
    def label(self) -> str:
        """How messages name it: the file, and the band when the file has several."""
        return f"{self.path} band {self.index}" if self.count > 1 else str(self.path)


@dataclass(frozen=True)
class Unreadable:
    """A file that cannot be opened: its layers are unknown, so it stands for one layer named
    by its stem (a model feature of that name gets this error)."""

    name: str
    source: Source
    reason: str


def list_bands(sources: Sequence[Source]) -> tuple[list[Band], list[Unreadable]]:
    """Every band of every source, named, in discovery order; two layers with one name are an
    error naming both (files and bands). Unreadable files are returned, not raised."""
    bands: list[Band] = []
    unreadable: list[Unreadable] = []
    for source in sources:
        try:
            bands += _bands_of(source)
        except GDAL_ERRORS as exc:
            reason = f"cannot open raster {source.path}: {exc}"
            unreadable.append(Unreadable(source.stem, source, reason))
        except InputError as exc:  # from open_raster: the reason is its message
            unreadable.append(Unreadable(source.stem, source, str(exc)))
    seen: dict[str, Band] = {}
    for band in bands:
        if band.name in seen:
            raise InputError(
                f"two layers have the feature name '{band.name}': {seen[band.name].label} "
                f"and {band.label}"
            )
        seen[band.name] = band
    return bands, unreadable


def _bands_of(source: Source) -> list[Band]:
    identity = remote_identity(source.path)  # before the header is read: the same version
    with open_raster(source.path, identity=identity) as ds:
        grid = Grid(ds.crs, ds.transform, ds.width, ds.height)
        if source.band is not None and not 1 <= source.band <= ds.count:
            raise ConfigError(
                f"config key '{source.where}.band': {source.band}, but {source.path} has "
                f"{ds.count} band(s)"
            )
        indexes = [source.band] if source.band is not None else list(ds.indexes)
        names = band_names(source.stem, ds.descriptions) if source.band is None else {}
        return [
            Band(
                name=names.get(i, source.stem),
                source=source,
                index=i,
                count=ds.count,
                dtype=ds.dtypes[i - 1],
                block_shape=(int(ds.block_shapes[i - 1][0]), int(ds.block_shapes[i - 1][1])),
                file_nodata=ds.nodatavals[i - 1],
                grid=grid,
                identity=identity,
            )
            for i in indexes
        ]


def band_names(stem: str, descriptions: Sequence[str | None]) -> dict[int, str]:
    """Band number -> layer name: ``stem`` for a single band; else the band's description
    when it is set and unique in the file, else ``<stem>_<N>``."""
    if len(descriptions) == 1:
        return {1: stem}
    counts = Counter(d for d in descriptions if d)
    return {i: d if d and counts[d] == 1 else f"{stem}_{i}" for i, d in enumerate(descriptions, 1)}


def _float32_values(values: Sequence[float]) -> tuple[float, ...]:
    """Cast nodata values to float32 the way pixel values are; NaN and inf need no entry."""
    with np.errstate(over="ignore", invalid="ignore"):
        cast = np.asarray(values, dtype=np.float64).astype(np.float32)
    return tuple(sorted({float(v) for v in cast if np.isfinite(v)}))


def nodata_rule(band: Band, nodata: NodataConfig) -> tuple[float, ...]:
    """The float32 values that mean nodata in this band (its own nodata tag included)."""
    values = list(nodata.values)
    if nodata.use_file_nodata and band.file_nodata is not None:
        values.append(band.file_nodata)
    return _float32_values(values)


# ----------------------------------------------------------------------------- the grid


@dataclass(frozen=True)
class Reference:
    """The grid the model's layers are read on (the output's grid), and where it comes from."""

    grid: Grid
    block: tuple[int, int]
    what: str  # for messages: "the grid of rasters.reference X" or "the grid ... share"


def reference_grid(bands: Sequence[Band], rasters: RastersConfig) -> Reference:
    """``rasters.reference`` when given; else the grid most of ``bands`` share (a tie: the
    grid of the first of them, which is the first model layer in the model's order)."""
    if rasters.reference is not None:
        try:
            with rasterio.open(rasters.reference) as ds:
                grid = Grid(ds.crs, ds.transform, ds.width, ds.height)
                block = (int(ds.block_shapes[0][0]), int(ds.block_shapes[0][1]))
        except GDAL_ERRORS as exc:
            raise InputError(
                f"rasters.reference: cannot open raster {rasters.reference}: {exc}"
            ) from None
        return Reference(grid, block, f"the grid of rasters.reference {rasters.reference}")
    groups: list[list[Band]] = []
    for band in bands:
        group = next((g for g in groups if same_grid(g[0].grid, band.grid)), None)
        if group is None:
            groups.append([band])
        else:
            group.append(band)
    best = max(groups, key=len)  # max keeps the first of equals: the first layer's grid
    if len(groups) == 1:
        what = f"the grid of {best[0].label}"
    else:
        what = (
            f"the grid {len(best)} of {len(bands)} model layers share "
            f"({grid_text(best[0].grid)}, e.g. {best[0].label})"
        )
    return Reference(best[0].grid, best[0].block_shape, what)


def open_layers(
    bands: Sequence[Band],
    nodata: NodataConfig,
    rasters: RastersConfig,
    extra: Sequence[Band] = (),
) -> tuple[Grid, list[Layer]]:
    """The layers a run reads, on the reference grid: under ``rasters.align`` a band off that
    grid is read warped onto it, otherwise it is an error naming each band off the grid and
    what differs. ``bands`` are the model's (in the model's order), or every band found; they
    choose the reference grid. ``extra`` bands are read on that grid too (after ``bands``)."""
    if not bands:
        raise InputError("no layers to read")
    if rasters.align:
        _check_resampling_names(rasters, [b.name for b in (*bands, *extra)])
    ref = reference_grid(bands, rasters)
    bands = [*bands, *extra]
    _check_crs_mix(bands, ref, rasters.align)
    misfit = [b for b in bands if not same_grid(ref.grid, b.grid)]
    if misfit and not rasters.align:
        if len(misfit) == 1:
            head = f"raster {misfit[0].label} is not on {ref.what}: "
        else:
            head = f"{len(misfit)} rasters are not on {ref.what}: "
        raise InputError(
            head
            + "; ".join(
                "; ".join(grid_differences(ref.grid, b.grid))
                if len(misfit) == 1
                else f"{b.label}: " + ", ".join(grid_differences(ref.grid, b.grid))
                for b in misfit
            )
            + "; set rasters.align: true to warp "
            + ("it" if len(misfit) == 1 else "them")
            + " onto that grid"
        )
    layers = []
    for band in bands:
        warp = None
        block = band.block_shape
        if band in misfit:
            grid = ref.grid
            warp = Warp(
                grid.crs.to_wkt() if grid.crs else "",  # type: ignore[attr-defined]
                tuple(grid.transform)[:6],  # type: ignore[arg-type]
                grid.width,
                grid.height,
                rasters.resampling_for(band.name),
                *kernel_scales(
                    grid.crs,  # type: ignore[arg-type]
                    grid.transform,  # type: ignore[arg-type]
                    (grid.height, grid.width),
                    band.grid.crs,  # type: ignore[arg-type]
                    band.grid.transform,  # type: ignore[arg-type]
                ),
            )
            block = ref.block  # windows follow the reference grid's blocks
            log.info("layer %s is warped onto %s (%s)", band.name, ref.what, warp.resampling)
        rule = nodata_rule(band, nodata)
        layers.append(
            Layer(band.name, band.path, band.dtype, block, rule, warp, band.index, band.identity)
        )
    return ref.grid, layers


def _check_crs_mix(bands: Sequence[Band], ref: Reference, align: bool) -> None:
    """Rasters with a CRS and without one cannot share a grid, nor be warped onto each other."""
    if ref.grid.crs is None:
        odd = [b for b in bands if b.grid.crs is not None]
    else:
        odd = [b for b in bands if b.grid.crs is None]
    if not odd:
        return
    plain = [b for b in bands if b.grid.crs is None]
    with_crs = [b for b in bands if b.grid.crs is not None]
    names = ", ".join(f"{b.label} ({crs_text(b.grid.crs)})" for b in with_crs[:5])
    names += ", ..." if len(with_crs) > 5 else ""
    plain_names = ", ".join(b.label for b in plain[:5]) + (", ..." if len(plain) > 5 else "")
    reason = (
        "rasters.align cannot warp between a grid with a CRS and one without"
        if align
        else "they cannot share a grid"
    )
    raise InputError(
        f"some model layers have a CRS ({names}) and some have none ({plain_names}): "
        f"{reason}; {ASSIGN_CRS}"
    )


def _check_resampling_names(rasters: RastersConfig, names: Sequence[str]) -> None:
    unknown = [k for k in rasters.resampling if k != "default" and k not in set(names)]
    if unknown:
        raise ConfigError(
            f"config key 'rasters.resampling': no layer is named {', '.join(unknown)} "
            f"(layers: {', '.join(names)})"
        )
