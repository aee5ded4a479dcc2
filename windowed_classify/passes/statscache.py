"""Pass-1 statistics cache: one small JSON per layer, keyed by what the statistics depend on.

The key is the file's resolved path, size and modification time (ns) plus its nodata rule (and,
for a layer warped by rasters.align, the reference grid and the resampling), so a second run over
the same covariates (with another model, say) skips pass 1, and touching a file invalidates its
entry.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import OutputError
from ..inputs.layers import Layer
from ..outputs.atomic import write_text_atomic
from .stats import LayerStats

log = logging.getLogger(__name__)

VERSION = 1


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "windowed_classify" / "stats"


def file_identity(path: Path | str) -> dict[str, Any]:
    """What tells a file's content has not changed: resolved path, size, modification time.
    A URL has only its text."""
    if not isinstance(path, Path):
        return {"path": str(path)}
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def layer_key(layer: Layer) -> str:
    if not isinstance(layer.path, Path):  # a URL (rasters.files): no size or mtime to trust
        raise OSError(f"not a local file: {layer.path}")
    ident = {
        "version": VERSION,
        **file_identity(layer.path),
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

    def _file(self, layer: Layer) -> Path:
        return self.folder / f"{layer_key(layer)}.json"

    def get(self, layer: Layer) -> LayerStats | None:
        try:
            data = json.loads(self._file(layer).read_text(encoding="utf-8"))
            return LayerStats(**data)
        except (OSError, ValueError, TypeError):
            return None

    def put(self, layer: Layer, stats: LayerStats) -> None:
        """Best effort: a cache that cannot be written only costs time next run."""
        if not isinstance(layer.path, Path):
            return  # a URL: not cached (no size or modification time to key it by)
        target = self._file(layer)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_text_atomic(target, json.dumps(stats.to_dict()))
        except (OSError, OutputError) as exc:
            log.warning("could not write the statistics cache %s: %s", target, exc)
