"""The layers: every band of every input file, named; the reference grid of the model's layers;
each layer's nodata rule.

Only headers are read here; pixels are read by ``reader``. A file the model does not use is
never required to be readable, georeferenced or on the grid.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning

from ..config import NodataConfig, RastersConfig
from ..config_values import is_remote
from ..errors import ConfigError, InputError
from .discover import Source
from .grid import Grid, crs_text, grid_differences, grid_text, same_grid
from .identity import Identity, remote_identity
from .readahead import concurrently
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


OUTPUT_TAG = "WINDOWED_CLASSIFY"  # the dataset tag every raster this tool writes carries


@dataclass
class Listing:
    """Every band of the inputs, in discovery order; the files that cannot be opened; the
    rasters this tool wrote, which are never layers."""

    bands: list[Band]
    unreadable: list[Unreadable]
    ours: list[Path | str]


def list_bands(sources: Sequence[Source], naming: str = "auto") -> Listing:
    """Every band of every source, named (``naming``: rasters.band_names), in discovery order.
    Unreadable files are returned, not raised; a file found in a folder that this tool wrote
    (its tags say so) is left out. Two layers may share a name here: whether that matters
    depends on which layers the model uses (``prepare``). Remote files are opened at once
    (readahead.py): their headers cost a round trip or three each."""
    out = Listing([], [], [])
    remote = [i for i, source in enumerate(sources) if is_remote(source.path)]
    # warnings' filters are the process's: set once here, not in each thread
    with warnings.catch_warnings():  # a file without georeferencing: the grid check says so
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        opened = concurrently([partial(_listed, sources[i], naming) for i in remote])
        found = dict(zip(remote, opened, strict=True))
        for i, source in enumerate(sources):
            bands = found[i] if i in found else _listed(source, naming)
            if isinstance(bands, ConfigError):  # raised in the files' order
                raise bands
            if isinstance(bands, Unreadable):
                out.unreadable.append(bands)
            elif bands is None:
                out.ours.append(source.path)
            else:
                out.bands += bands
    return out


def _listed(source: Source, naming: str) -> list[Band] | Unreadable | ConfigError | None:
    """``_bands_of``, or the file as unreadable when it cannot be opened, or the config's
    error about it."""
    try:
        return _bands_of(source, naming)
    except ConfigError as exc:
        return exc
    except GDAL_ERRORS as exc:
        return Unreadable(source.stem, source, f"cannot open raster {source.path}: {exc}")
    except InputError as exc:  # from open_raster: the reason is its message
        return Unreadable(source.stem, source, str(exc))


def duplicates(bands: Sequence[Band]) -> list[tuple[Band, Band]]:
    """(first, other) for every band whose name an earlier band already has."""
    seen: dict[str, Band] = {}
    pairs = []
    for band in bands:
        if band.name in seen:
            pairs.append((seen[band.name], band))
        else:
            seen[band.name] = band
    return pairs


def _bands_of(source: Source, naming: str) -> list[Band] | None:
    """The bands of one file; None for a raster this tool wrote, found in a folder."""
    identity = remote_identity(source.path)  # before the header is read: the same version
    with open_raster(source.path, identity=identity) as ds:
        if not source.listed and OUTPUT_TAG in ds.tags():
            return None
        grid = Grid(ds.crs, ds.transform, ds.width, ds.height)
        if source.band is not None and not 1 <= source.band <= ds.count:
            raise ConfigError(
                f"config key '{source.where}.band': {source.band}, but {source.path} has "
                f"{ds.count} band(s)"
            )
        indexes = [source.band] if source.band is not None else list(ds.indexes)
        names = band_names(source.stem, ds.descriptions, naming) if source.band is None else {}
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


def band_names(
    stem: str, descriptions: Sequence[str | None], naming: str = "auto"
) -> dict[int, str]:
    """Band number -> layer name. A single band: ``stem``. Several, ``auto``: the band's
    description when it is set and unique in the file, else ``<stem>_<N>``; ``stem``:
    ``<stem>_<description>`` (or ``<stem>_<N>``), so that files of several dates whose bands
    carry the same descriptions get distinct names."""
    if len(descriptions) == 1:
        return {1: stem}
    counts = Counter(d for d in descriptions if d)
    names = {}
    for i, d in enumerate(descriptions, 1):
        unique = d is not None and counts[d] == 1  # counts holds no empty description
        if naming == "stem":
            names[i] = f"{stem}_{d}" if unique else f"{stem}_{i}"
        else:
            names[i] = d if unique and d else f"{stem}_{i}"
    return names


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
    shared: bool = True  # every band was on it (no choice was made between grids)


def reference_grid(
    bands: Sequence[Band], rasters: RastersConfig, whose: str = "model layers"
) -> Reference:
    """``rasters.reference`` when given; else the grid most of ``bands`` share (a tie: the
    grid of the first of them, which is the first model layer in the model's order).
    ``whose`` names the bands in messages ("model layers", or "layers" without a model)."""
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
            f"the grid {len(best)} of {len(bands)} {whose} share "
            f"({grid_text(best[0].grid)}, e.g. {best[0].label})"
        )
    return Reference(best[0].grid, best[0].block_shape, what, shared=len(groups) == 1)


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
    ref = reference_grid(bands, rasters)
    every = [*bands, *extra]
    check_grid(ref, every, rasters)
    return ref.grid, layers_on(ref, every, nodata, rasters)


def check_grid(ref: Reference, bands: Sequence[Band], rasters: RastersConfig) -> None:
    """The bands can be read on ``ref``: an error for a CRS mix, unknown resampling keys and,
    without ``rasters.align``, for every band off the grid."""
    if rasters.align:
        _check_resampling_names(rasters, [b.name for b in bands])
    _check_crs_mix(bands, ref, rasters.align)
    misfit = [b for b in bands if not same_grid(ref.grid, b.grid)]
    if misfit and not rasters.align:
        raise InputError(off_grid_message(ref, misfit))


MAX_LISTED = 10  # files named in a message, at most


def off_grid_message(ref: Reference, misfit: Sequence[Band]) -> str:
    """The bands off the grid, one line per file (its bands named in it), at most
    ``MAX_LISTED`` files; what differs is said once per file."""
    files: dict[Path | str, list[Band]] = {}
    for band in misfit:
        files.setdefault(band.path, []).append(band)
    n_bands, n_files = len(misfit), len(files)
    counted = f"{n_files} file{'s' if n_files > 1 else ''}"
    if n_bands != n_files:
        counted += f" ({n_bands} bands)"
    verb = "are" if n_files > 1 else "is"
    lines = [f"{counted} {verb} not on {ref.what}; set rasters.align: true to warp onto it:"]
    for path, group in list(files.items())[:MAX_LISTED]:
        first = group[0]
        which = ""
        if first.count > 1:
            which = (
                " band " + ", ".join(str(b.index) for b in group)
                if len(group) < first.count
                else " (all bands)"
            )
        lines.append(f"  {path}{which}: " + ", ".join(grid_differences(ref.grid, first.grid)))
    if len(files) > MAX_LISTED:
        lines.append(f"  and {len(files) - MAX_LISTED} more file(s)")
    return "\n".join(lines)


def fits(ref: Reference, band: Band, align: bool) -> bool:
    """Whether ``band`` can be read on ``ref``: on it, or warped onto it under align (a grid
    with a CRS and one without cannot be warped onto each other)."""
    if same_grid(ref.grid, band.grid):
        return True
    return align and (band.grid.crs is None) == (ref.grid.crs is None)


def layers_on(
    ref: Reference, bands: Sequence[Band], nodata: NodataConfig, rasters: RastersConfig
) -> list[Layer]:
    """The layers of ``bands`` as read on ``ref`` (a band off it warped onto it)."""
    layers = []
    for band in bands:
        warp = None
        block = band.block_shape
        if not same_grid(ref.grid, band.grid):
            grid = ref.grid
            warp = Warp(
                grid.crs.to_wkt() if grid.crs else "",
                tuple(grid.transform)[:6],
                grid.width,
                grid.height,
                rasters.resampling_for(band.name),
                *kernel_scales(
                    grid.crs,
                    grid.transform,
                    (grid.height, grid.width),
                    band.grid.crs,
                    band.grid.transform,
                ),
            )
            block = ref.block  # windows follow the reference grid's blocks
            log.info("layer %s is warped onto %s (%s)", band.name, ref.what, warp.resampling)
        rule = nodata_rule(band, nodata)
        layers.append(
            Layer(band.name, band.path, band.dtype, block, rule, warp, band.index, band.identity)
        )
    return layers


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
