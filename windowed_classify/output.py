"""The output GeoTIFF: profile, an open writer under a temporary name, atomic finish.

Nothing appears under the output's name until the run has succeeded: the raster is written
as ``.<name>.partial.tif`` in the same folder (same filesystem, so the final rename is atomic)
and moved into place by ``os.replace``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.windows import Window

from .classify import WindowResult, proba_fill
from .config import OutputConfig
from .errors import OutputError
from .stack import Grid
from .style import colormap, palette, write_style

TILE = 256


def partial_path(path: Path) -> Path:
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def temporary_paths(path: Path) -> list[Path]:
    """The names an output has while it is being written."""
    return [partial_path(path), path.with_name(f".{path.stem}.partial.cog{path.suffix}")]


def check_writable(out: OutputConfig) -> None:
    """Before any work: refuse an existing output (unless overwrite), make the folders."""
    paths = [*out.rasters, *([out.preview] if out.preview is not None else [])]
    for path in paths:
        if path.exists() and not out.overwrite:
            raise OutputError(
                f"output {path} already exists; set output.overwrite: true "
                "(or pass --overwrite) to replace it"
            )
    for folder in dict.fromkeys(path.parent for path in paths):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the output folder {folder}: {exc}") from None
        if not os.access(folder, os.W_OK):
            raise OutputError(f"the output folder {folder} is not writable")


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

    def __init__(self, final: Path, prof: dict[str, Any], overview: Resampling):
        self.final = final
        self.temp = partial_path(final)
        self.cog_temp = temporary_paths(final)[1]
        self.overview = overview
        self.compress = prof["compress"]
        for stale in (self.temp, self.cog_temp):
            stale.unlink(missing_ok=True)
        try:
            self.ds = rasterio.open(self.temp, "w", **prof)
        except RasterioError as exc:
            raise OutputError(f"cannot create the output {final}: {exc}") from None

    def write(self, data: np.ndarray, window: Window) -> None:
        try:
            if data.ndim == 2:
                self.ds.write(data, 1, window=window)
            else:
                self.ds.write(data, window=window)
        except RasterioError as exc:
            raise OutputError(f"cannot write the output {self.final}: {exc}") from None

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

    def abort(self) -> None:
        """Drop the temporary files; the output's name is never touched."""
        try:
            if not self.ds.closed:
                self.ds.close()
        except Exception:  # noqa: BLE001 - already failing; removing the file matters more
            pass
        self.temp.unlink(missing_ok=True)
        self.cog_temp.unlink(missing_ok=True)


class OutputSet:
    """Every raster of one run (classes, probabilities, confidence), written window by window.

    Counts every class code as it goes; ``commit`` finishes all of them (overviews, COG),
    then moves them into place together and writes the class style sidecars.
    """

    def __init__(self, grid: Grid, out: OutputConfig, labels: Sequence[Any]):
        self.out = out
        self.labels = list(labels)
        self.colours = palette(len(self.labels))
        self.counts = np.zeros(len(self.labels), dtype=np.int64)
        self.masked = 0
        self.targets: list[Target] = []
        self.style: dict[str, Path] = {}
        try:
            self.classes = self._target(out.path, profile(grid, out), Resampling.mode)
            if out.dtype in ("uint8", "uint16"):  # GeoTIFF colour tables: 8 and 16 bit only
                self.classes.ds.write_colormap(1, colormap(self.colours, out.nodata))
            self.classes.ds.set_band_description(1, "class")
            self.probabilities = self.confidence = None
            if out.probabilities is not None:
                self.probabilities = self._proba_target(out.probabilities, grid, len(labels))
                for i, label in enumerate(self.labels, start=1):
                    self.probabilities.ds.set_band_description(i, str(label))
                    self.probabilities.ds.update_tags(i, code=str(i - 1), label=str(label))
            if out.confidence is not None:
                self.confidence = self._proba_target(out.confidence, grid, 1)
                self.confidence.ds.set_band_description(1, "confidence")
        except BaseException:
            self.abort()
            raise

    def _target(self, path: Path, prof: dict[str, Any], overview: Resampling) -> Target:
        target = Target(path, prof, overview)
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
        encoding = (
            "percent 0-100, 255 = masked" if dtype == "uint8" else "probability 0-1, NaN = masked"
        )
        target.ds.update_tags(encoding=encoding)
        return target

    def write(self, window: Window, result: WindowResult) -> None:
        codes = result.codes
        is_nodata = codes == self.out.nodata
        n_nodata = int(np.count_nonzero(is_nodata))
        self.masked += n_nodata
        valid = codes[~is_nodata] if n_nodata else codes.ravel()
        self.counts += np.bincount(valid.astype(np.int64, copy=False), minlength=len(self.counts))
        self.classes.write(codes, window)
        if self.probabilities is not None and result.probabilities is not None:
            self.probabilities.write(result.probabilities, window)
        if self.confidence is not None and result.confidence is not None:
            self.confidence.write(result.confidence, window)

    def pixel_counts(self) -> dict[str, int]:
        counts = {str(code): int(n) for code, n in enumerate(self.counts)}
        counts[str(self.out.nodata)] = self.masked
        return counts

    def commit(self) -> None:
        """Finish every raster, then move them all into place, then the style sidecars."""
        try:
            for target in self.targets:
                target.finish(self.out.cog)
            for target in self.targets:
                target.publish()
        except BaseException:
            self.abort()
            raise
        self.style = write_style(self.out.path, self.labels, self.colours, self.counts.tolist())

    def abort(self) -> None:
        for target in self.targets:
            target.abort()


def write_json_atomic(path: Path, data: dict) -> None:
    temp = path.with_name(f".{path.name}.partial")
    try:
        temp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc}") from None
