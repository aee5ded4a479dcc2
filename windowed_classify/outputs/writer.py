"""The output GeoTIFF: profile, an open writer under a temporary name, atomic finish.

Nothing appears under the output's name until the run has succeeded: the raster is written
as ``.<name>.partial.tif`` in the same folder (same filesystem, so the final rename is atomic)
and moved into place by ``os.replace``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.windows import Window

from ..config import OutputConfig
from ..errors import OutputError, gdal_reason
from ..inputs.grid import Grid
from ..inputs.windows import window_text
from ..models.legend import Legend
from .results import WindowResult, proba_fill
from .style import colormap, palette, write_style

TILE = 256


def partial_path(path: Path) -> Path:
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def temporary_paths(path: Path) -> list[Path]:
    """The names an output has while it is being written."""
    return [partial_path(path), path.with_name(f".{path.stem}.partial.cog{path.suffix}")]


def check_writable(out: OutputConfig, created: list[Path] | None = None) -> None:
    """Before any work: refuse an existing output (unless overwrite), make the folders.

    ``created`` collects the folders made here (deepest last), for ``remove_if_empty``.
    """
    for path in out.files:
        if path.exists() and not out.overwrite:
            raise OutputError(
                f"output {path} already exists; set output.overwrite: true "
                "(or pass --overwrite) to replace it"
            )
    for folder in dict.fromkeys(path.parent for path in out.files):
        missing = [p for p in (folder, *folder.parents) if not p.exists()][::-1]
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the output folder {folder}: {exc}") from None
        if created is not None:
            created += missing
        if not os.access(folder, os.W_OK):
            raise OutputError(f"the output folder {folder} is not writable")


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
                self.ds = rasterio.open(self.temp, "w", **prof)
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


class OutputSet:
    """Every raster of one run (classes, probabilities, confidence), written window by window.

    Counts every class code as it goes; ``commit`` finishes all of them (overviews, COG),
    then moves them into place together and writes the class style sidecars.
    """

    def __init__(self, grid: Grid, out: OutputConfig, legend: Legend, resume: bool = False):
        self.out = out
        self.resume = resume
        self.labels = list(legend.labels)
        self.codes = np.asarray(legend.output_codes, dtype=np.int64)
        self.colours = palette(len(self.labels))
        self.counts = np.zeros(len(self.labels), dtype=np.int64)
        self.masked = 0
        self.targets: list[Target] = []
        self.style: dict[str, Path] = {}
        self.probabilities: Target | None = None
        self.confidence: Target | None = None
        try:
            self.classes = self._target(out.path, profile(grid, out), Resampling.mode)
            if out.probabilities is not None:
                self.probabilities = self._proba_target(out.probabilities, grid, len(self.labels))
            if out.confidence is not None:
                self.confidence = self._proba_target(out.confidence, grid, 1)
            if resume:
                return  # reopened: the rasters hold their colour table and names already
            if out.dtype in ("uint8", "uint16"):  # GeoTIFF colour tables: 8 and 16 bit only
                self.classes.ds.write_colormap(1, colormap(self.codes, self.colours, out.nodata))
            self.classes.ds.set_band_description(1, "class")
            if self.probabilities is not None:
                pairs = zip(self.codes, self.labels, strict=True)
                for i, (code, label) in enumerate(pairs, start=1):
                    self.probabilities.ds.set_band_description(i, str(label))
                    self.probabilities.ds.update_tags(i, code=str(code), label=str(label))
            if self.confidence is not None:
                self.confidence.ds.set_band_description(1, "confidence")
        except BaseException:
            self.abort()
            raise

    def _target(self, path: Path, prof: dict[str, Any], overview: Resampling) -> Target:
        target = Target(path, prof, overview, self.resume)
        self.targets.append(target)
        return target

    def _proba_target(self, path: Path, grid: Grid, bands: int) -> Target:
        dtype = self.out.probabilities_dtype
        prof = profile(grid, self.out) | {
            "count": bands,
            "dtype": dtype,
            "nodata": proba_fill(dtype),
        }
        target = self._target(path, prof, Resampling.average)
        if not self.resume:
            target.ds.update_tags(
                encoding="percent 0-100, 255 = masked"
                if dtype == "uint8"
                else "probability 0-1, NaN = masked"
            )
        return target

    def write(self, window: Window, result: WindowResult, parts: Iterable[Window] = ()) -> None:
        """Write a window's result, or only ``parts`` of it (sub-windows, grid offsets)."""
        pieces = list(parts) or [window]
        for part in pieces:
            rows = slice(part.row_off - window.row_off, part.row_off - window.row_off + part.height)
            cols = slice(part.col_off - window.col_off, part.col_off - window.col_off + part.width)
            self._count(result.codes[rows, cols])
            self.classes.write(result.codes[rows, cols], part)
            if self.probabilities is not None and result.probabilities is not None:
                self.probabilities.write(result.probabilities[:, rows, cols], part)
            if self.confidence is not None and result.confidence is not None:
                self.confidence.write(result.confidence[rows, cols], part)

    def _count(self, codes: np.ndarray) -> None:
        is_nodata = codes == self.out.nodata
        n_nodata = int(np.count_nonzero(is_nodata))
        self.masked += n_nodata
        valid = (codes[~is_nodata] if n_nodata else codes.ravel()).astype(np.int64, copy=False)
        low, high = (int(self.codes.min()), int(self.codes.max())) if self.codes.size else (0, 0)
        if high - low < 1 << 16:  # index codes, or labels close together: one bincount
            hist = np.bincount(valid - low, minlength=high - low + 1)
            self.counts += hist[self.codes - low]
        else:  # integer labels far apart (int32): count the codes present
            place = {int(c): i for i, c in enumerate(self.codes)}
            for code, n in zip(*np.unique(valid, return_counts=True), strict=True):
                self.counts[place[int(code)]] += n

    def checkpoint(self) -> None:
        for target in self.targets:
            target.checkpoint()

    def recount(self) -> None:
        """Count every code from the classes raster (a resumed run wrote only part of it)."""
        self.counts[:] = 0
        self.masked = 0
        ds = self.classes.ds
        rows = max(1, (1 << 24) // max(ds.width, 1))
        for top in range(0, ds.height, rows):
            window = Window(0, top, ds.width, min(rows, ds.height - top))
            self._count(ds.read(1, window=window))

    def pixel_counts(self) -> dict[str, int]:
        pairs = zip(self.codes.tolist(), self.counts, strict=True)
        counts = {str(code): int(n) for code, n in pairs}
        counts[str(self.out.nodata)] = self.masked
        return counts

    def commit(self) -> None:
        """Finish every raster, then move them all into place, then the style sidecars."""
        try:
            if self.resume:
                self.recount()
            for target in self.targets:
                target.finish(self.out.cog)
            for target in self.targets:
                target.publish()
        except BaseException:
            self.abort()
            raise
        self.style = write_style(
            self.out.path, self.codes.tolist(), self.labels, self.colours, self.counts.tolist()
        )

    def abort(self) -> None:
        for target in self.targets:
            target.abort()

    def suspend(self) -> None:
        """Close the temporary rasters and keep them, to be resumed."""
        for target in self.targets:
            target.close()
