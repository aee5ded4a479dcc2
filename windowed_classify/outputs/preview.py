"""A quick-look PNG of a classified GeoTIFF: the classes in colour and a legend; of a
regression's values: viridis from the 2nd to the 98th percentile and a colour bar.

The raster is read decimated (``out_shape``, nearest; GDAL takes the file's overviews when it
has them), never in full, so a preview of any size costs about max_side x max_side pixels
of memory. Colours come from the file's colour table when it has one, else from the same
palette the styled outputs use. Masked pixels (the file's nodata) are white. Needs
matplotlib (extra ``preview``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import RasterioError

from ..errors import OutputError
from .atomic import replace_atomic
from .style import palette

PREVIEW_HINT = (
    'the preview PNG needs matplotlib: pip install "windowed_classify[preview]" '
    "(or remove output.preview)"
)
ROWS_PER_COLUMN = 30  # legend entries per legend column
MIN_SIDE_PX = 400  # a small raster is drawn at least this big (whole pixels, no smoothing)
DPI = 100


@dataclass(frozen=True)
class Preview:
    path: Path
    shape: tuple[int, int]  # (rows, cols) read from the raster
    factor: float  # raster pixels per preview pixel along the longer side (1: full resolution)
    codes: tuple[int, ...]  # the legend's codes, in order


def write_preview(
    classified: Path,
    png: Path,
    labels: Mapping[int, str] | None = None,
    max_side: int = 1024,
    ramp: tuple[float, float] | None = None,
) -> Preview:
    """Write ``png``: the classes of ``classified`` (at most ``max_side`` pixels a side).

    ``labels`` maps code -> label; every labelled code is in the legend, with any other code
    found in the preview. With ``ramp`` (low, high) the raster holds values: drawn in viridis
    from low to high with a colour bar. The PNG appears under its name only when complete.
    """
    mpl = _matplotlib()
    classified, png = Path(classified), Path(png)
    if ramp is not None:
        return _values_preview(classified, png, ramp, max_side)
    data, nodata, table, factor = _read_decimated(classified, max(1, int(max_side)))
    names = {int(k): str(v) for k, v in (labels or {}).items()}
    valid = data != nodata if nodata is not None else np.ones(data.shape, dtype=bool)
    present = np.unique(data[valid]).tolist()
    codes = sorted(set(present) | set(names))
    colours = _colours(codes, table)
    rgba = _paint(data, valid, codes, colours)
    _draw(mpl, rgba, codes, colours, names, nodata, classified.name, factor, png)
    return Preview(png, (int(data.shape[0]), int(data.shape[1])), factor, tuple(codes))


def _matplotlib() -> Any:
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
        from matplotlib.figure import Figure  # noqa: F401
        from matplotlib.patches import Patch  # noqa: F401
    except ImportError:
        raise OutputError(PREVIEW_HINT) from None
    return matplotlib


def _values_preview(path: Path, png: Path, ramp: tuple[float, float], max_side: int) -> Preview:
    """Values in viridis between ``ramp``'s limits, masked pixels white, and a colour bar."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data, nodata, _, factor = _read_decimated(path, max(1, int(max_side)), whole=False)
    valid = np.isfinite(data) & (data != nodata if nodata is not None else True)
    shown = np.ma.masked_array(data, mask=~valid)
    rows, cols = data.shape
    zoom = max(1.0, MIN_SIDE_PX / max(rows, cols))
    img_w, img_h, margin, top, bar_w = cols * zoom, rows * zoom, 20, 40, 110
    width, height = margin + img_w + margin + bar_w, top + img_h + margin
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_axes(
        (margin / width, (height - top - img_h) / height, img_w / width, img_h / height)
    )
    image = ax.imshow(
        shown, cmap="viridis", vmin=ramp[0], vmax=ramp[1], interpolation="nearest", aspect="auto"
    )
    ax.set_xticks([])
    ax.set_yticks([])
    bar = fig.add_axes(
        ((2 * margin + img_w) / width, (height - top - img_h) / height, 18 / width, img_h / height)
    )
    fig.colorbar(image, cax=bar, extend="both")
    bar.tick_params(labelsize=8)
    scale = "full resolution" if factor <= 1 else f"1 preview pixel = {factor:.3g} pixels"
    fig.text(
        margin / width,
        1 - 12 / height,
        f"{path.name} ({scale}; colours: 2nd to 98th percentile)",
        va="top",
        fontsize=10,
    )
    png.parent.mkdir(parents=True, exist_ok=True)
    replace_atomic(
        png, lambda temp: fig.savefig(temp, dpi=DPI, facecolor="white"), what="the preview "
    )
    return Preview(png, (int(rows), int(cols)), factor, ())


def _read_decimated(
    path: Path, max_side: int, whole: bool = True
) -> tuple[np.ndarray, Any, dict[int, tuple[int, ...]] | None, float]:
    """Band 1 at most ``max_side`` a side (nearest), its nodata and colour table."""
    try:
        with rasterio.open(path) as ds:
            factor = max(1.0, max(ds.height, ds.width) / max_side)
            shape = (
                max(1, min(ds.height, round(ds.height / factor))),
                max(1, min(ds.width, round(ds.width / factor))),
            )
            data = ds.read(1, out_shape=shape, resampling=Resampling.nearest)
            nodata = ds.nodata
            try:
                table: dict[int, tuple[int, ...]] | None = dict(ds.colormap(1))
            except ValueError:  # no colour table
                table = None
    except RasterioError as exc:
        raise OutputError(f"cannot read {path} for its preview: {exc}") from None
    if nodata is not None and whole:
        nodata = int(nodata)
    return data, nodata, table, factor


def _colours(
    codes: list[int], table: Mapping[int, tuple[int, ...]] | None
) -> dict[int, tuple[int, int, int]]:
    """The colour table's colour per code, else the styled outputs' palette (by code)."""
    top = max(codes, default=0)
    fallback = palette(top + 1) if min(codes, default=0) >= 0 and top < 65536 else None
    out: dict[int, tuple[int, int, int]] = {}
    for rank, code in enumerate(codes):
        if table is not None and code in table and len(table[code]) >= 3:
            r, g, b = (int(c) for c in table[code][:3])
            out[code] = (r, g, b)
        elif fallback is not None:
            out[code] = fallback[code]
        else:
            out[code] = palette(len(codes))[rank]
    return out


def _paint(
    data: np.ndarray,
    valid: np.ndarray,
    codes: list[int],
    colours: Mapping[int, tuple[int, int, int]],
) -> np.ndarray:
    """RGBA pixels: each code's colour, masked pixels transparent."""
    rgba = np.zeros((*data.shape, 4), dtype=np.uint8)
    if not codes:
        return rgba
    lut = np.array([(*colours[c], 255) for c in codes], dtype=np.uint8)
    order = np.asarray(codes)
    idx = np.searchsorted(order, data).clip(0, len(codes) - 1)
    rgba[valid] = lut[idx[valid]]
    return rgba


def _draw(
    mpl: Any,
    rgba: np.ndarray,
    codes: list[int],
    colours: Mapping[int, tuple[int, int, int]],
    names: Mapping[int, str],
    nodata: int | None,
    title: str,
    factor: float,
    png: Path,
) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    handles = [
        Patch(
            facecolor=(colours[c][0] / 255, colours[c][1] / 255, colours[c][2] / 255),
            edgecolor="0.4",
            label=f"{c}  {names.get(c, '')}".rstrip(),
        )
        for c in codes
    ]
    if nodata is not None:
        handles.append(Patch(facecolor="white", edgecolor="0.4", label=f"{nodata}  no data"))
    rows, cols = rgba.shape[:2]
    zoom = max(1.0, MIN_SIDE_PX / max(rows, cols))
    img_w, img_h = cols * zoom, rows * zoom
    n_cols = max(1, math.ceil(len(handles) / ROWS_PER_COLUMN))
    longest = max((len(str(h.get_label())) for h in handles), default=4)
    legend_w = n_cols * (50 + 7 * min(longest, 40)) + 20
    legend_h = min(len(handles), ROWS_PER_COLUMN) * 19 + 40
    margin, top = 20, 40
    width = margin + img_w + margin + legend_w
    height = top + max(img_h, legend_h) + margin

    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_axes(
        (margin / width, (height - top - img_h) / height, img_w / width, img_h / height)
    )
    ax.imshow(rgba, interpolation="nearest", aspect="auto")
    ax.set_xticks([])
    ax.set_yticks([])
    scale = "full resolution" if factor <= 1 else f"1 preview pixel = {factor:.3g} pixels"
    fig.text(margin / width, 1 - 12 / height, f"{title} ({scale})", va="top", fontsize=10)
    fig.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=((2 * margin + img_w) / width, (height - top) / height),
        ncol=n_cols,
        fontsize=8,
        frameon=False,
        title="code  class",
        title_fontsize=8,
        alignment="left",
    )
    png.parent.mkdir(parents=True, exist_ok=True)
    replace_atomic(
        png, lambda temp: fig.savefig(temp, dpi=DPI, facecolor="white"), what="the preview "
    )
