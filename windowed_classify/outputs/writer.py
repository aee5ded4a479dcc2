"""The output GeoTIFF: profile, an open writer under a temporary name, atomic finish.

Nothing appears under the output's name until the run has succeeded: the raster is written
as ``.<name>.partial.tif`` in the same folder (same filesystem, so the final rename is atomic)
and moved into place by ``os.replace``.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.windows import Window

from .._version import __version__
from ..config import OutputConfig
from ..errors import OutputError, gdal_reason
from ..inputs.grid import Grid
from ..inputs.layers import OUTPUT_TAG
from ..inputs.windows import window_text
from .kinds import RasterSpec
from .kinds.floats import FloatRaster
from .ramps import ramp_limits
from .results import WindowResult
from .tallies import ClassTally, FloatTally, InsideTally, Tally, blocks

TILE = 256


def partial_path(path: Path) -> Path:
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def temporary_paths(path: Path) -> list[Path]:
    """The names an output has while it is being written."""
    return [partial_path(path), path.with_name(f".{path.stem}.partial.cog{path.suffix}")]


def check_writable(
    out: OutputConfig, created: list[Path] | None = None, create: bool = True
) -> None:
    """Before any work: refuse an existing output (unless overwrite), make the folders.

    ``created`` collects the folders made here (deepest last), for ``remove_if_empty``.
    ``create`` False (``check``) only checks that the folders could be made and written.
    """
    for path in out.files:
        if path.exists() and not out.overwrite:
            raise OutputError(
                f"output {path} already exists; set output.overwrite: true "
                "(or pass --overwrite) to replace it"
            )
    for folder in dict.fromkeys(path.parent for path in out.files):
        missing = [p for p in (folder, *folder.parents) if not p.exists()][::-1]
        if not create:
            _could_create(folder, missing)
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot create the output folder {folder}: {exc.strerror or exc}"
            ) from None
        if created is not None:
            created += missing
        if not os.access(folder, os.W_OK):
            raise OutputError(f"the output folder {folder} is not writable")


def _could_create(folder: Path, missing: list[Path]) -> None:
    """``check_writable``'s errors for ``folder``, without making anything."""
    if not missing:
        if not os.access(folder, os.W_OK):
            raise OutputError(f"the output folder {folder} is not writable")
        return
    parent = missing[0].parent
    if not parent.is_dir():
        reason = os.strerror(errno.ENOTDIR)
    elif not os.access(parent, os.W_OK):
        reason = os.strerror(errno.EACCES)
    else:
        return
    raise OutputError(f"cannot create the output folder {folder}: {reason}")


def remove_if_empty(folders: list[Path]) -> None:
    """A run that failed removes the folders it made for its outputs, if they are empty."""
    for folder in reversed(folders):  # deepest first
        with contextlib.suppress(OSError):
            folder.rmdir()  # only an empty folder goes


def profile(grid: Grid, out: OutputConfig) -> dict[str, Any]:
    return {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": 1,
        "dtype": out.dtype,
        "nodata": out.nodata,
        "crs": grid.crs,
        "transform": grid.transform,
        "tiled": True,
        "blockxsize": TILE,
        "blockysize": TILE,
        "compress": out.compress,
        "interleave": "band",
        "BIGTIFF": "IF_SAFER",
    }


def overview_factors(width: int, height: int, tile: int = TILE) -> list[int]:
    """2, 4, 8, ... until the smallest overview fits in one tile (none for a small raster)."""
    factors: list[int] = []
    f = 2
    while max(width, height) / (f // 2) > tile:
        factors.append(f)
        f *= 2
    return factors


class Target:
    """One output GeoTIFF, written under its temporary name; published by ``os.replace``."""

    def __init__(self, final: Path, prof: dict[str, Any], overview: Resampling, resume: bool):
        self.final = final
        self.temp = partial_path(final)
        self.cog_temp = temporary_paths(final)[1]
        self.overview = overview
        self.compress = prof["compress"]
        self.cog_temp.unlink(missing_ok=True)
        try:
            if resume:
                self.ds = rasterio.open(self.temp, "r+")
                expected = (prof["count"], prof["height"], prof["width"], prof["dtype"])
                found = (self.ds.count, self.ds.height, self.ds.width, self.ds.dtypes[0])
                if found != expected:
                    raise OutputError(
                        f"cannot resume: the partial output {self.temp} is not the raster "
                        "this run writes; run again without --resume to start over"
                    )
            else:
                self.temp.unlink(missing_ok=True)
                self.ds = rasterio.open(self.temp, "w+", **prof)  # read back: deferred rows
        except RasterioError as exc:
            verb = "reopen the partial output" if resume else "create the output"
            raise OutputError(f"cannot {verb} {self.temp if resume else final}: {exc}") from None

    def checkpoint(self) -> None:
        """Everything written so far is on disk (data and tile index); writing goes on."""
        try:
            self.ds.close()
            with open(self.temp, "rb+") as f:
                os.fsync(f.fileno())
            self.ds = rasterio.open(self.temp, "r+")
        except (RasterioError, OSError) as exc:
            raise OutputError(
                f"cannot write the output {self.final}: {gdal_reason(exc)}; is the disk full?"
            ) from None

    def read(self, window: Window) -> np.ndarray:
        """What is written in ``window`` (every band; 2-D for a single band)."""
        try:
            data = self.ds.read(window=window)
        except RasterioError as exc:
            raise OutputError(
                f"cannot read back the output {self.final} in window {window_text(window)}: "
                f"{gdal_reason(exc)}"
            ) from None
        return data[0] if data.shape[0] == 1 else data

    def write(self, data: np.ndarray, window: Window) -> None:
        try:
            if data.ndim == 2:
                self.ds.write(data, 1, window=window)
            else:
                self.ds.write(data, window=window)
        except RasterioError as exc:
            raise OutputError(
                f"cannot write the output {self.final} in window {window_text(window)}: "
                f"{gdal_reason(exc)}; is the disk full?"
            ) from None

    def finish(self, cog: bool) -> None:
        """Close (flush); for a COG add overviews and lay it out with GDAL's COG driver."""
        try:
            self.ds.close()
            if not cog:
                return
            with rasterio.open(self.temp, "r+") as ds:
                factors = overview_factors(ds.width, ds.height)
                if factors:
                    ds.build_overviews(factors, self.overview)
            rasterio.shutil.copy(
                self.temp,
                self.cog_temp,
                driver="COG",
                COMPRESS=self.compress.upper(),
                BLOCKSIZE=TILE,
                OVERVIEWS="FORCE_USE_EXISTING" if factors else "NONE",
                BIGTIFF="IF_SAFER",
            )
            self.temp.unlink()
            self.temp, self.cog_temp = self.cog_temp, self.temp
        except (RasterioError, OSError) as exc:
            raise OutputError(f"cannot finish the output {self.final}: {exc}") from None

    def publish(self) -> None:
        try:
            os.replace(self.temp, self.final)
        except OSError as exc:
            raise OutputError(f"cannot move the output into place at {self.final}: {exc}") from None

    def close(self) -> None:
        try:
            if not self.ds.closed:
                self.ds.close()
        except Exception:  # noqa: BLE001 - already failing; removing the file matters more
            pass

    def abort(self) -> None:
        """Drop the temporary files; the output's name is never touched."""
        self.close()
        self.temp.unlink(missing_ok=True)
        self.cog_temp.unlink(missing_ok=True)


@dataclass
class OutputSummary:
    """What the writer counted, for the report: class pixel counts (with the masked), each
    float raster's statistics, the AOA's inside and outside pixels."""

    pixel_counts: dict[str, int]  # code -> pixels, masked included; a regression: masked only
    masked: int
    statistics: dict[str, Any] = field(default_factory=dict)  # float rasters, by key
    aoa: dict[str, int] | None = None  # inside, outside (unmasked pixels)
    ramp: tuple[float, float] | None = None  # a regression's colour ramp: 2nd, 98th percentile


class OutputSet:
    """Every raster of one run (``specs``: the main raster first), written window by window.

    Counts what each raster holds as it goes (its kind's tally); ``commit`` finishes all of
    them (overviews, COG), reads the float rasters back once for their exact statistics, moves
    them into place together and writes each kind's style sidecars.
    """

    def __init__(
        self, grid: Grid, specs: list[RasterSpec], out: OutputConfig, resume: bool = False
    ):
        self.out = out
        self.resume = resume
        self.pixels = grid.width * grid.height
        self.specs = specs
        self.targets: dict[str, Target] = {}
        self.tallies: dict[str, Tally] = {}
        self.style: dict[str, Path] = {}
        try:
            for spec in self.specs:
                self.targets[spec.key] = self._target(spec, grid)
                tally = spec.kind.tally(spec)
                if tally is not None:
                    self.tallies[spec.key] = tally
        except BaseException:
            self.abort()
            raise

    def _target(self, spec: RasterSpec, grid: Grid) -> Target:
        prof = profile(grid, self.out) | {
            "count": spec.count,
            "dtype": spec.dtype,
            "nodata": spec.nodata,
        }
        target = Target(spec.path, prof, spec.overview, self.resume)
        if self.resume:
            return target  # reopened: the raster holds its colour table and names already
        for i, text in enumerate(spec.descriptions, start=1):
            target.ds.set_band_description(i, text)
        for i, tags in enumerate(spec.band_tags, start=1):
            target.ds.update_tags(i, **tags)
        # the mark that keeps this raster from being taken as a layer by a later run
        target.ds.update_tags(**{OUTPUT_TAG: f"{__version__} output.{spec.key}"}, **spec.tags)
        if spec.colormap is not None:
            target.ds.write_colormap(1, spec.colormap)
        return target

    def write(self, window: Window, result: WindowResult, parts: Iterable[Window] = ()) -> None:
        """Write a window's result, or only ``parts`` of it (sub-windows, grid offsets). Its
        pending pixels (deferred rows) are written masked and counted later (``patch``)."""
        pieces = list(parts) or [window]
        for part in pieces:
            rows = slice(part.row_off - window.row_off, part.row_off - window.row_off + part.height)
            cols = slice(part.col_off - window.col_off, part.col_off - window.col_off + part.width)
            counted = None if result.pending is None else ~result.pending[rows, cols]
            for key, target in self.targets.items():
                piece = result.values[key][..., rows, cols]
                if key in self.tallies:
                    self.tallies[key].add(piece if counted is None else piece[..., counted])
                target.write(piece, part)

    def patch(self, window: Window, pixels: np.ndarray, values: dict[str, np.ndarray]) -> None:
        """Write (and count) the outputs of some pixels of a written window: ``pixels`` index
        the window's pixels in row-major order, ``values[key]`` is (rows,) or (bands, rows)."""
        for key, target in self.targets.items():
            data = target.read(window)
            flat = data.reshape(*data.shape[:-2], -1)
            flat[..., pixels] = values[key]
            if key in self.tallies:
                self.tallies[key].add(np.asarray(values[key]))
            target.write(data, window)

    def patch_where(self, window: Window, result: WindowResult, where: np.ndarray) -> None:
        """Write (and count) ``result``'s pixels where ``where`` (a mask of the window)."""
        pixels = np.flatnonzero(where)
        values = {
            key: a.reshape(*a.shape[:-2], -1)[..., pixels] for key, a in result.values.items()
        }
        self.patch(window, pixels, values)

    def checkpoint(self) -> None:
        for target in self.targets.values():
            target.checkpoint()

    def recount(self) -> None:
        """Count everything again from the rasters (a resumed run wrote only part of them)."""
        for key, tally in self.tallies.items():
            tally.reset()
            for block in blocks(self.targets[key].ds):
                tally.add(block)

    def _finish_statistics(self) -> None:
        """The float rasters' exact statistics, from one more read of each (finished) file."""
        for key, tally in self.tallies.items():
            if isinstance(tally, FloatTally):
                path = self.targets[key].temp

                def read(band: int, path: Path = path) -> Iterator[np.ndarray]:
                    with rasterio.open(path) as ds:
                        yield from blocks(ds, band)

                tally.finish(read)

    def _main(self) -> Tally:
        return self.tallies[self.specs[0].key]

    def pixel_counts(self) -> dict[str, int]:
        main = self._main()
        counts: dict[str, int] = {}
        if isinstance(main, ClassTally):
            pairs = zip(main.codes.tolist(), main.counts, strict=True)
            counts = {str(code): int(n) for code, n in pairs}
        counts[_nodata_key(self.specs[0].nodata)] = main.masked
        return counts

    def summary(self) -> OutputSummary:
        inside = next((t for t in self.tallies.values() if isinstance(t, InsideTally)), None)
        aoa = None if inside is None else {"inside": inside.inside, "outside": inside.outside}
        stats: dict[str, Any] = {}
        for spec in self.specs:
            tally = self.tallies.get(spec.key)
            if not isinstance(tally, FloatTally) or tally.results is None:
                continue
            bands = [dict(band) for band in tally.results]
            at_most = bands[0].pop("at_most_threshold", None)  # the DI's: inside the AOA
            if at_most is not None and aoa is None:
                aoa = {"inside": at_most, "outside": bands[0]["count"] - at_most}
            kind = spec.kind
            assert isinstance(kind, FloatRaster)
            stats[kind.report_key or spec.key] = kind.report(spec, bands)
        ramp = None
        if "prediction" in stats:  # a regression: a ramp even when every pixel is masked
            ramp = ramp_limits(stats["prediction"]) or (0.0, 1.0)
        return OutputSummary(self.pixel_counts(), self._main().masked, stats, aoa, ramp)

    def commit(self) -> None:
        """Finish every raster, then move them all into place, then the style sidecars."""
        try:
            if self.resume:
                self.recount()
            for target in self.targets.values():
                target.finish(self.out.cog)
            self._finish_statistics()
            for target in self.targets.values():
                target.publish()
        except BaseException:
            self.abort()
            raise
        for spec in self.specs:
            written = spec.kind.style(spec, self.tallies.get(spec.key), self.pixels)
            prefix = "" if spec.key == "path" else f"{spec.key}_"
            self.style |= {prefix + kind: path for kind, path in written.items()}

    def abort(self) -> None:
        for target in self.targets.values():
            target.abort()

    def suspend(self) -> None:
        """Close the temporary rasters and keep them, to be resumed."""
        for target in self.targets.values():
            target.close()


def _nodata_key(nodata: float) -> str:
    """The report's key of masked pixels: the nodata value as the config reads it."""
    value = float(nodata)
    return str(int(value)) if value.is_integer() else str(nodata)
