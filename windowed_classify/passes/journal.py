"""The resume journal: which output tiles of an interrupted pass 2 are safely on disk.

The journal sits beside the temporary output (``.prediction.partial.journal.json``) and
holds a fingerprint of what the result depends on (the config's semantic keys, the model
file, every input file), pass 1's statistics, the window plan, and a bitmap of complete
output tiles. It is rewritten atomically at each checkpoint, right after the temporary
rasters were closed and synced, so it never claims a tile that is not on disk.

The unit is the output tile, not the window: a tile is complete once every window over
it is written, and no later write touches it (a resumed run writes only the parts of its
windows that fall in incomplete tiles). GDAL rewrites a compressed tile in place when the
new data fits, so a tile shared by a finished and an unfinished window could otherwise be
torn by a crash.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rasterio.windows import Window

from .._version import __version__
from ..errors import OutputError
from ..inputs.grid import Grid
from ..inputs.identity import identity_of, local_identity
from ..inputs.layers import Layer
from ..inputs.windows import window_key
from ..outputs.atomic import write_text_atomic
from .stats import LayerStats

if TYPE_CHECKING:
    from .prepared import Prepared

FORMAT = 1
AOA_TABLE = "(aoa.training)"  # its key among the inputs: no layer name has brackets


def journal_path(temp_output: Path) -> Path:
    return temp_output.with_name(temp_output.stem + ".journal.json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and value != value:
        return "nan"
    return value


def fingerprint(prep: Prepared) -> dict[str, Any]:
    """What pass 2's pixels depend on. How the run is executed (workers, memory, engine)
    and how it is finished (COG, preview, overwrite) are free to change between attempts."""
    cfg = prep.config
    output = dataclasses.asdict(prep.output_config)
    for key in ("overwrite", "cog", "preview"):
        output.pop(key)
    model = prep.model_config.path
    sections = {
        "rasters": dataclasses.asdict(cfg.rasters),
        "nodata": dataclasses.asdict(cfg.nodata),
        "model": dataclasses.asdict(prep.model_config),
        "output": output,
    }
    inputs = {layer.name: layer_identity(layer) for layer in prep.layers}
    if cfg.aoa is not None:  # the AOA's threshold and DI depend on the training rows
        sections["aoa"] = dataclasses.asdict(cfg.aoa)
        inputs[AOA_TABLE] = local_identity(cfg.aoa.training)
    return {
        "tool_version": __version__,
        "config": _plain(sections),
        "model_file": {**local_identity(model), "sha256": _sha256(model)},
        "inputs": inputs,
    }


def layer_identity(layer: Layer) -> dict[str, Any]:
    """The file a layer is read from (and its band, when not the first). A remote file whose
    identity cannot be read is ``{"path": URL, "unknown": true}``: never resumed from."""
    ident = identity_of(layer.path, layer.identity) or {"path": str(layer.path), "unknown": True}
    return ident if layer.band == 1 else {**ident, "band": layer.band}


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    changed = []
    if old["config"] != new["config"]:
        keys = [
            f"{section}.{key}"
            for section, values in new["config"].items()
            for key in values
            if old["config"].get(section, {}).get(key) != values[key]
        ]
        changed.append("the config (" + ", ".join(keys or ["its keys"]) + ")")
    if old["model_file"] != new["model_file"]:
        changed.append(f"the model file {new['model_file']['path']}")
    for name in sorted(set(old["inputs"]) | set(new["inputs"])):
        if old["inputs"].get(name) != new["inputs"].get(name):
            path = (new["inputs"].get(name) or old["inputs"].get(name) or {}).get("path", name)
            what = "the AOA training table" if name == AOA_TABLE else f"the covariate {name}"
            changed.append(f"{what} ({path})")
    if old["tool_version"] != new["tool_version"]:
        changed.append(f"the tool's version ({old['tool_version']} -> {new['tool_version']})")
    return changed


class Journal:
    """The header (fingerprint, statistics, windows) and the complete-tile bitmap."""

    def __init__(
        self,
        path: Path,
        prints: dict[str, Any],
        stats: dict[str, LayerStats] | None,
        windows: Sequence[Window],
        tiles: TileTracker,
    ):
        self.path = path
        self.prints = prints
        self.stats = stats
        self.windows = list(windows)
        self.tiles = tiles

    def save(self) -> None:
        data = {
            "format": FORMAT,
            "fingerprint": self.prints,
            # None while pass 2 counts them (fused): a resumed run computes them apart
            "stats": (
                None
                if self.stats is None
                else {name: s.to_dict() for name, s in self.stats.items()}
            ),
            "windows": [list(window_key(w)) for w in self.windows],
            "tile": self.tiles.tile,
            "done_tiles": base64.b64encode(np.packbits(self.tiles.done).tobytes()).decode(),
        }
        write_text_atomic(self.path, json.dumps(data), durable=True)

    def remove(self) -> None:
        """The journal, and any copy a killed run left half-written beside it."""
        self.path.unlink(missing_ok=True)
        for temp in self.path.parent.glob(f".{self.path.name}.*.partial.json"):
            temp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path, grid: Grid, prints: dict[str, Any]) -> Journal:
        """The journal of an interrupted run; an OutputError says why it cannot be used."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}")
            windows = [Window(*w) for w in data["windows"]]
            stats = (
                None
                if data["stats"] is None
                else {name: LayerStats(**s) for name, s in data["stats"].items()}
            )
            tiles = TileTracker(grid, windows, int(data["tile"]))
            bits = np.frombuffer(base64.b64decode(data["done_tiles"]), dtype=np.uint8)
            tiles.mark_done(np.unpackbits(bits)[: tiles.done.size].astype(bool))
            old = data["fingerprint"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise OutputError(
                f"cannot resume: the journal {path} is unreadable ({exc}); "
                "run again without --resume to start over"
            ) from None
        unknown = [
            f"{name} ({ident['path']})"
            for name, ident in prints["inputs"].items()
            if ident.get("unknown")
        ]
        if unknown:  # a changed file would go unnoticed: the output could mix two versions
            raise OutputError(
                "cannot resume: the server does not identify the covariate(s) "
                + ", ".join(unknown)
                + " (no ETag or Last-Modified), so a change since the interrupted run could not "
                "be noticed. Run again without --resume to start over"
            )
        changed = _differences(old, prints)
        if changed:
            raise OutputError(
                "cannot resume: since the interrupted run, "
                + "; ".join(changed)
                + " changed. Run again without --resume to start over"
            )
        return cls(path, prints, stats, windows, tiles)


class TileTracker:
    """Counts, per output tile, the windows still to write over it, and the windows written
    over it whose deferred rows are still to come (``held``): a tile is complete when both
    are none."""

    def __init__(self, grid: Grid, windows: Sequence[Window], tile: int):
        self.tile = tile
        self.height, self.width = grid.height, grid.width
        rows, cols = -(-grid.height // tile), -(-grid.width // tile)
        self.pending = np.zeros((rows, cols), dtype=np.int32)
        self.held = np.zeros((rows, cols), dtype=np.int32)
        self.done = np.zeros((rows, cols), dtype=bool)
        self.windows = list(windows)
        for window in self.windows:
            r, c = self._span(window)
            self.pending[r, c] += 1

    def _span(self, w: Window) -> tuple[slice, slice]:
        t = self.tile
        r0, c0 = int(w.row_off) // t, int(w.col_off) // t
        r1 = -(-(int(w.row_off) + int(w.height)) // t)
        c1 = -(-(int(w.col_off) + int(w.width)) // t)
        return slice(r0, r1), slice(c0, c1)

    def mark_done(self, done: np.ndarray) -> None:
        """Tiles known complete (from a journal): no window is left to write over them."""
        self.done = done.reshape(self.done.shape).copy()
        self.windows = [w for w in self.windows if not self.done[self._span(w)].all()]
        self.pending[:] = 0
        for window in self.windows:
            r, c = self._span(window)
            self.pending[r, c] += ~self.done[r, c]

    def todo(self) -> list[Window]:
        """The windows that still have an incomplete tile."""
        return list(self.windows)

    def todo_window(self, window: Window) -> bool:
        """Whether ``window`` still has an incomplete tile."""
        return not bool(self.done[self._span(window)].all())

    def parts(self, window: Window) -> Iterable[Window]:
        """Where to write ``window``'s result: all of it, or (resuming) only the pieces in
        incomplete tiles, one horizontal run of tiles at a time."""
        r, c = self._span(window)
        done = self.done[r, c]
        if not done.any():
            yield window
            return
        t = self.tile
        row_end, col_end = window.row_off + window.height, window.col_off + window.width
        for i, tile_row in enumerate(done):
            top = max(window.row_off, (r.start + i) * t)
            bottom = min(row_end, (r.start + i + 1) * t)
            j = 0
            while j < tile_row.size:
                if tile_row[j]:
                    j += 1
                    continue
                k = j
                while k < tile_row.size and not tile_row[k]:
                    k += 1
                left = max(window.col_off, (c.start + j) * t)
                right = min(col_end, (c.start + k) * t)
                yield Window(left, top, right - left, bottom - top)
                j = k

    def written(self, window: Window, held: bool = False) -> None:
        """``window`` is written; ``held``: some of its pixels come later (deferred rows)."""
        r, c = self._span(window)
        open_ = ~self.done[r, c]
        self.pending[r, c] -= open_
        if held:
            self.held[r, c] += open_
        self.done[r, c] |= (self.pending[r, c] <= 0) & (self.held[r, c] <= 0)

    def patched(self, window: Window) -> None:
        """``window``'s deferred rows are written too."""
        r, c = self._span(window)
        open_ = ~self.done[r, c]
        self.held[r, c] -= open_
        self.done[r, c] |= (self.pending[r, c] <= 0) & (self.held[r, c] <= 0)

    @property
    def complete(self) -> int:
        return int(self.done.sum())
