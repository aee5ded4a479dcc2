"""The pass-1 statistics cache: what its key depends on, and that it never fails a run."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
from helpers import write_raster

from windowed_classify.inputs.layers import Layer
from windowed_classify.inputs.warp import Warp
from windowed_classify.passes.stats import LayerStats
from windowed_classify.passes.statscache import StatsCache, layer_key

STATS = LayerStats(median=1.25, min=-3.0, max=7.5, valid_count=90, nodata_count=10)


def make_layer(tmp_path: Path, name: str = "elev") -> Layer:
    path = write_raster(tmp_path / f"{name}.tif", np.arange(20, dtype=np.float32).reshape(4, 5))
    return Layer(name, path, "float32", (16, 16), (-9999.0,))


def test_the_key_follows_the_file_and_the_nodata_rule(tmp_path: Path) -> None:
    layer = make_layer(tmp_path)
    key = layer_key(layer)
    assert layer_key(replace(layer, name="renamed")) == key  # the name does not matter
    assert layer_key(replace(layer, nodata_values=(-1.0,))) != key
    warp = Warp("EPSG:4326", (1, 0, 0, 0, -1, 0), 5, 4, "bilinear")
    assert layer_key(replace(layer, warp=warp)) != key
    st = layer.path.stat()
    os.utime(layer.path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert layer_key(layer) != key  # touched: another key


def test_put_then_get_round_trips_and_misses_are_none(tmp_path: Path) -> None:
    cache = StatsCache(tmp_path / "cache")
    layer = make_layer(tmp_path)
    assert cache.get(layer) is None
    cache.put(layer, STATS)
    assert cache.get(layer) == STATS
    other = make_layer(tmp_path, "slope")
    assert cache.get(other) is None


def test_a_corrupt_entry_is_a_miss_and_unidentified_urls_are_never_cached(tmp_path: Path) -> None:
    cache = StatsCache(tmp_path / "cache")
    layer = make_layer(tmp_path)
    cache.put(layer, STATS)
    entry = next((tmp_path / "cache").glob("*.json"))
    entry.write_text("{truncated", encoding="utf-8")
    assert cache.get(layer) is None
    # the server sent neither ETag nor Last-Modified (identity ()): nothing to key it by
    url = Layer(
        "remote", "/vsicurl/https://example.org/a.tif", "float32", (16, 16), (), identity=()
    )
    cache.put(url, STATS)  # silently not cached
    assert cache.get(url) is None
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1


def test_a_url_is_cached_by_what_its_server_says_of_it(tmp_path: Path) -> None:
    url = "/vsicurl/https://example.org/a.tif"

    def remote(etag: str) -> Layer:
        ident = (("path", url), ("etag", etag), ("last_modified", None), ("size", 100))
        return Layer("remote", url, "float32", (16, 16), (), identity=ident)

    cache = StatsCache(tmp_path / "cache")
    cache.put(remote('"v1"'), STATS)
    assert StatsCache(tmp_path / "cache").get(remote('"v1"')) == STATS
    assert StatsCache(tmp_path / "cache").get(remote('"v2"')) is None  # replaced on the server


def test_an_unwritable_cache_only_warns(tmp_path: Path, caplog) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x", encoding="utf-8")
    cache = StatsCache(blocker / "cache")
    cache.put(make_layer(tmp_path), STATS)
    assert "could not write the statistics cache" in caplog.text
