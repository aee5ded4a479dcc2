"""Pass 1: every model layer's median, min, max and counts, from the cache where it holds them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..progress import Progress
from .stats import LayerStats
from .statscache import StatsCache

if TYPE_CHECKING:
    from ..engines.executor import Executor
    from ..prepare import Prepared

log = logging.getLogger(__name__)


def statistics(
    prep: Prepared, executor: Executor, recompute: bool, progress: str = "bar"
) -> tuple[dict[str, LayerStats], str]:
    """Per-layer statistics, and the cache's state: disabled, used, computed or partly used."""
    cache = (
        StatsCache(prep.config.processing.cache_dir) if prep.config.processing.stats_cache else None
    )
    found: dict[str, LayerStats] = {}
    if cache is not None and not recompute:
        for layer in prep.layers:
            hit = cache.get(layer)
            if hit is not None:
                found[layer.name] = hit
    todo = [layer for layer in prep.layers if layer.name not in found]
    if todo:
        with Progress("pass1", prep.grid.pixels * len(todo), progress) as bar:
            fresh = executor.compute_stats(todo, prep.grid, progress=bar.update)
        if cache is not None:
            for layer in todo:
                cache.put(layer, fresh[layer.name])
        found.update(fresh)
    state = (
        "disabled"
        if cache is None
        else (
            "used" if not todo else "computed" if len(todo) == len(prep.layers) else "partly used"
        )
    )
    for layer in prep.layers:
        s = found[layer.name]
        log.info(
            "layer %s: median %s, min %s, max %s, %d valid, %d nodata",
            layer.name,
            s.median,
            s.min,
            s.max,
            s.valid_count,
            s.nodata_count,
        )
    return {layer.name: found[layer.name] for layer in prep.layers}, state
