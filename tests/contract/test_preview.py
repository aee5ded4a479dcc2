"""The preview PNG: classes in the file's colours, nodata white, a legend; read decimated,
never in full; a clear error without matplotlib."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers import write_raster
from rasterio.io import DatasetReader

from windowed_classify.errors import OutputError
from windowed_classify.outputs.preview import write_preview
from windowed_classify.outputs.style import palette

RED, GREEN, BLUE = (230, 25, 75), (60, 180, 75), (0, 130, 200)


def classified(path: Path, height: int, width: int, table: dict | None = None) -> np.ndarray:
    """Three vertical bands of classes 0, 1, 2 and a top-left nodata (255) corner."""
    data = np.zeros((height, width), np.uint8)
    data[:, width // 3 :] = 1
    data[:, 2 * width // 3 :] = 2
    data[: height // 4, : width // 4] = 255
    write_raster(path, data, nodata=255, layout=("tiled", 256))
    if table is not None:
        with rasterio.open(path, "r+") as ds:
            ds.write_colormap(1, table)
    return data


def png_pixels(path: Path) -> np.ndarray:
    from matplotlib.image import imread

    img = imread(path)
    return np.round(img[..., :3] * 255).astype(int)


def has_colour(img: np.ndarray, rgb: tuple[int, int, int]) -> int:
    return int(np.count_nonzero((img == np.array(rgb)).all(axis=-1)))


def test_preview_uses_the_colour_table_and_shows_nodata_white(tmp_path: Path) -> None:
    tif = tmp_path / "prediction.tif"
    table = {0: (*RED, 255), 1: (*GREEN, 255), 2: (*BLUE, 255), 255: (0, 0, 0, 0)}
    classified(tif, 300, 600, table)
    png = tmp_path / "prediction.png"
    result = write_preview(tif, png, {0: "forest", 1: "water", 2: "urban"})
    assert result.codes == (0, 1, 2)
    assert result.shape == (300, 600) and result.factor == 1.0  # small: full resolution
    img = png_pixels(png)
    red, green, blue = (has_colour(img, c) for c in (RED, GREEN, BLUE))
    # drawn 1:1: each class a third of the 600 x 300 map, red less the nodata corner
    assert green == pytest.approx(300 * 200, rel=0.03)
    assert blue == pytest.approx(300 * 200, rel=0.03)
    assert red == pytest.approx(300 * 200 - 75 * 150, rel=0.03)
    # the nodata corner (top-left quarter of each side) is white
    rows, cols = np.nonzero((img == np.array(RED)).all(axis=-1))
    top, left = rows.min(), cols.min()  # the map's corner: red lies right of and below it
    corner = img[top + 2 : top + 70, left + 2 : left + 145]
    assert corner.shape[:2] == (68, 143) and (corner == 255).all()
    assert not list(tmp_path.glob(".*partial*"))


def test_preview_is_read_decimated_never_in_full(tmp_path: Path, monkeypatch) -> None:
    tif = tmp_path / "big.tif"
    classified(tif, 3000, 2000)
    reads = []
    real_read = DatasetReader.read

    def spy(self, *args, **kwargs):
        out = real_read(self, *args, **kwargs)
        reads.append(out.shape)
        return out

    monkeypatch.setattr(DatasetReader, "read", spy)
    result = write_preview(tif, tmp_path / "big.png", max_side=256)
    assert reads == [(256, 171)]
    assert result.shape == (256, 171) and result.factor == pytest.approx(3000 / 256)
    img = png_pixels(tmp_path / "big.png")
    # no colour table: the styled outputs' palette, by code
    for rgb in palette(3):
        assert has_colour(img, rgb) > 1000


def test_one_pixel_and_a_hundred_classes(tmp_path: Path) -> None:
    one = write_raster(tmp_path / "one.tif", np.array([[7]], np.uint8), nodata=255)
    result = write_preview(one, tmp_path / "one.png")
    assert result.shape == (1, 1) and result.codes == (7,)
    img = png_pixels(tmp_path / "one.png")
    assert has_colour(img, palette(8)[7]) > 100_000  # one pixel drawn big

    many = (np.arange(300 * 300).reshape(300, 300) % 100).astype(np.uint8)
    tif = write_raster(tmp_path / "many.tif", many, nodata=255)
    labels = {i: f"class number {i}" for i in range(100)}
    result = write_preview(tif, tmp_path / "many.png", labels)
    assert result.codes == tuple(range(100))
    img = png_pixels(tmp_path / "many.png")
    assert sum(has_colour(img, rgb) > 0 for rgb in palette(100)) >= 95  # legend + map


def test_labels_without_pixels_are_in_the_legend(tmp_path: Path) -> None:
    tif = tmp_path / "p.tif"
    classified(tif, 64, 64)
    result = write_preview(tif, tmp_path / "p.png", {"0": "a", "1": "b", "2": "c", "5": "rare"})
    assert result.codes == (0, 1, 2, 5)


def test_missing_matplotlib_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    tif = tmp_path / "p.tif"
    classified(tif, 32, 32)
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    png = tmp_path / "p.png"
    with pytest.raises(OutputError, match=r"matplotlib.*windowed_classify\[preview\]"):
        write_preview(tif, png)
    assert not png.exists()
