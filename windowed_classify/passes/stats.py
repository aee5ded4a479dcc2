"""A layer's pass-1 statistics, and how pass 1 cuts a layer into tasks of whole blocks."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..inputs.grid import Grid
from ..inputs.layers import Layer
from ..inputs.windows import WindowKey, layer_windows, window_key

TASK_PIXELS = 1 << 22  # about 4 million pixels (16 MB of float32) read by one task


@dataclass
class LayerStats:
    median: float
    min: float | None
    max: float | None
    valid_count: int
    nodata_count: int
    second_read: bool = False  # the guide's band missed the median: counted again
    hints: list[str] | None = None  # values that look like undeclared nodata (inputs.hints)

    def to_dict(self) -> dict:
        return asdict(self)


def layer_blocks(grid: Grid, layer: Layer) -> list[WindowKey]:
    """The windows pass 1 reads one layer by: its whole blocks (inputs.windows.layer_windows)."""
    return [window_key(w) for w in layer_windows(grid, layer.block_shape)]


def block_tasks(grid: Grid, layer: Layer) -> list[list[WindowKey]]:
    """A layer's blocks in groups of about ``TASK_PIXELS``: one task each."""
    blocks = layer_blocks(grid, layer)
    per = max(1, TASK_PIXELS // max(1, blocks[0][2] * blocks[0][3]))
    return [blocks[s : s + per] for s in range(0, len(blocks), per)]
