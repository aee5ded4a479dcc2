"""Pass-1 statistics cache: one small JSON per layer, keyed by what the statistics depend on.

The key is the file's identity (``inputs.identity``: a local file's resolved path, size and
modification time (ns); a remote file's URL with its ETag, Last-Modified and Content-Length)
plus its nodata rule (and, for a layer warped by rasters.align, the reference grid and the
resampling), so a second run over the same covariates (with another model, say) skips pass 1,
and touching or replacing a file invalidates its entry. A remote file without an identity is
not cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

from ..errors import OutputError
from ..inputs.identity import identity_of
from ..inputs.layers import Layer
from ..outputs.atomic import write_text_atomic
from .stats import LayerStats

log = logging.getLogger(__name__)

VERSION = 1


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "windowed_classify" / "stats"


def layer_key(layer: Layer) -> str:
    identity = identity_of(layer.path, layer.identity)
    if identity is None:  # a URL whose server says too little (logged): nothing to key it by
        raise OSError(f"no identity for {layer.path}")
    ident = {
        "version": VERSION,
        **identity,
        "nodata": [repr(v) for v in layer.nodata_values],
    }
    if layer.band != 1:  # a single-band file's key names no band
        ident["band"] = layer.band
    if layer.warp is not None:  # warped onto a reference grid: other values than the file's
        ident["warp"] = asdict(layer.warp)
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]


class StatsCache:
    def __init__(self, folder: Path | None):
        self.folder = folder or default_cache_dir()
        # a layer's key as first seen: a remote identity is asked for once, before its reads
        self._keys: dict[Layer, str] = {}

    def _file(self, layer: Layer) -> Path:
        if layer not in self._keys:
            self._keys[layer] = layer_key(layer)
        return self.folder / f"{self._keys[layer]}.json"

    def get(self, layer: Layer) -> LayerStats | None:
        try:
            data = json.loads(self._file(layer).read_text(encoding="utf-8"))
            return LayerStats(**data)
        except (OSError, ValueError, TypeError):
            return None

    def put(self, layer: Layer, stats: LayerStats) -> None:
        """Best effort: a cache that cannot be written only costs time next run."""
        try:
            target = self._file(layer)
        except OSError:
            return  # a URL without an identity (logged): not cached
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_text_atomic(target, json.dumps(stats.to_dict()))
        except (OSError, OutputError) as exc:
            log.warning("could not write the statistics cache %s: %s", target, exc)
