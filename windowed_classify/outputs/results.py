"""What pass 2 hands the writer for one window: every output raster's values, by key."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class WindowResult:
    """One window's outputs by their key in the output section (``path``: the classes, or a
    regression's values): (pixels,) or (bands, pixels), or reshaped to the window."""

    values: dict[str, np.ndarray]
    # pixels whose outputs come later (rows waiting for a median fill): written masked for
    # now, counted in no tally until then
    pending: np.ndarray | None = None

    def reshaped(self, height: int, width: int) -> WindowResult:
        return WindowResult(
            {k: a.reshape(*a.shape[:-1], height, width) for k, a in self.values.items()},
            None if self.pending is None else self.pending.reshape(height, width),
        )
