"""Warps in threads leave Python's warning filters alone and leak no rasterio warning.

rasterio wraps numpy arrays given to ``reproject`` in datasets built under
``warnings.catch_warnings``, which is not thread-safe: concurrent warps of arrays leaked its
NotGeoreferencedWarning (seen in align runs with threads) and could leave an "ignore every
warning" filter installed for the rest of the process."""

from __future__ import annotations

import threading
import warnings

import numpy as np
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import from_origin
from rasterio.windows import Window

from windowed_classify.inputs.warp import Warp, read_warped


def test_concurrent_warps_leak_no_warning_and_keep_the_filters() -> None:
    ref, src = from_origin(0, 1000, 10, 10), from_origin(0, 1000, 20, 20)
    crs = CRS.from_epsg(32633)
    warp = Warp(crs.to_wkt(), tuple(ref)[:6], 100, 100, "bilinear", 0.5, 0.5)
    data = np.random.default_rng(0).random((50, 50), dtype=np.float32)
    expected = read_warped(warp, Window(0, 0, 64, 64), crs, src, (50, 50), lambda w: data.copy())
    results: list[bool] = []

    def work() -> None:
        for _ in range(150):
            got = read_warped(warp, Window(0, 0, 64, 64), crs, src, (50, 50), lambda w: data.copy())
            results.append(np.array_equal(got, expected, equal_nan=True))

    seen: list[str] = []
    shown = warnings.showwarning
    with warnings.catch_warnings():  # this test's own filters, restored at the end
        warnings.simplefilter("always", NotGeoreferencedWarning)
        filters = list(warnings.filters)
        warnings.showwarning = lambda message, category, *a, **k: seen.append(str(message))
        try:
            threads = [threading.Thread(target=work) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            warnings.showwarning = shown
        assert warnings.filters == filters
    assert seen == []
    assert len(results) == 600 and all(results)
