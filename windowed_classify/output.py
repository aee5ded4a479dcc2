"""The output GeoTIFF: profile, an open writer under a temporary name, atomic finish.

Nothing appears under the output's name until the run has succeeded: the raster is written
as ``.<name>.partial.tif`` in the same folder (same filesystem, so the final rename is atomic)
and moved into place by ``os.replace``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window

from .config import OutputConfig
from .errors import OutputError
from .stack import Grid

TILE = 256


def partial_path(path: Path) -> Path:
    return path.with_name(f".{path.stem}.partial{path.suffix}")


def check_writable(out: OutputConfig) -> None:
    """Before any work: refuse an existing output (unless overwrite), make the folder."""
    if out.path.exists() and not out.overwrite:
        raise OutputError(
            f"output {out.path} already exists; set output.overwrite: true "
            "(or pass --overwrite) to replace it"
        )
    try:
        out.path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output folder {out.path.parent}: {exc}") from None
    if not os.access(out.path.parent, os.W_OK):
        raise OutputError(f"the output folder {out.path.parent} is not writable")


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


class CodeWriter:
    """Writes windows of codes into the open temporary GeoTIFF and counts every code."""

    def __init__(self, grid: Grid, out: OutputConfig, n_classes: int):
        self.out = out
        self.final = out.path
        self.temp = partial_path(out.path)
        self.n_classes = n_classes
        self.counts = np.zeros(n_classes, dtype=np.int64)
        self.masked = 0
        if self.temp.exists():
            self.temp.unlink()
        try:
            self.ds = rasterio.open(self.temp, "w", **profile(grid, out))
        except RasterioError as exc:
            raise OutputError(f"cannot create the output {self.final}: {exc}") from None

    def write(self, window: Window, codes: np.ndarray) -> None:
        is_nodata = codes == self.out.nodata
        n_nodata = int(np.count_nonzero(is_nodata))
        self.masked += n_nodata
        valid = codes[~is_nodata] if n_nodata else codes.ravel()
        self.counts += np.bincount(valid.astype(np.int64, copy=False), minlength=self.n_classes)
        try:
            self.ds.write(codes, 1, window=window)
        except RasterioError as exc:
            raise OutputError(f"cannot write the output {self.final}: {exc}") from None

    def pixel_counts(self) -> dict[str, int]:
        counts = {str(code): int(n) for code, n in enumerate(self.counts)}
        counts[str(self.out.nodata)] = self.masked
        return counts

    def commit(self) -> None:
        """Close, flush and move the finished raster into place."""
        try:
            self.ds.close()
            os.replace(self.temp, self.final)
        except (RasterioError, OSError) as exc:
            self.abort()
            raise OutputError(f"cannot finish the output {self.final}: {exc}") from None

    def abort(self) -> None:
        """Drop the temporary file; the output's name is never touched."""
        try:
            if not self.ds.closed:
                self.ds.close()
        except Exception:  # noqa: BLE001 - already failing; removing the file matters more
            pass
        self.temp.unlink(missing_ok=True)


def write_json_atomic(path: Path, data: dict) -> None:
    temp = path.with_name(f".{path.name}.partial")
    try:
        temp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc}") from None
