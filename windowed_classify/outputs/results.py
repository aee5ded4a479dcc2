"""What pass 2 hands the writer for one window: the codes (or predicted values) and the
optional bands, and how probabilities are encoded (whole percent, or float32)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

AOA_NODATA = 255  # the AOA raster: 1 inside, 0 outside, 255 masked


@dataclass
class WindowResult:
    """One window's outputs: codes, and the probability bands / confidence when asked.

    ``bands`` holds the other optional outputs by their key in the output section (entropy,
    margin, spread, quantiles, di, aoa): (pixels,) or (bands, pixels), reshaped alike.
    """

    codes: np.ndarray  # (pixels,) or (height, width), output dtype (a regression's values)
    probabilities: np.ndarray | None = None  # (classes, pixels) encoded (see encode_proba)
    confidence: np.ndarray | None = None  # (pixels,) encoded
    bands: dict[str, np.ndarray] = field(default_factory=dict)

    def reshaped(self, height: int, width: int) -> WindowResult:
        def shape(a: np.ndarray | None, *lead: int) -> np.ndarray | None:
            return None if a is None else a.reshape(*lead, height, width)

        n = 0 if self.probabilities is None else self.probabilities.shape[0]
        return WindowResult(
            self.codes.reshape(height, width),
            shape(self.probabilities, n),
            shape(self.confidence),
            {k: a.reshape(*a.shape[:-1], height, width) for k, a in self.bands.items()},
        )


def proba_fill(dtype: str) -> float:
    """The masked value of the probability and confidence outputs."""
    return 255 if dtype == "uint8" else float("nan")


def encode_proba(p: np.ndarray, dtype: str) -> np.ndarray:
    """Probabilities 0..1 -> uint8 whole percent (rounded half to even) or float32."""
    if dtype == "uint8":
        return np.rint(p * 100.0).astype(np.uint8)
    return p.astype(np.float32)
