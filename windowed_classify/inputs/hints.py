"""Values that look like nodata nobody declared, from a sample of a layer's values.

A Landsat scene whose collar is 0, with no nodata tag, maps the collar as a class; a
threshold nobody can reach fills it with medians. These hints are warnings (the run still
runs), for a layer's values that are not among its nodata values:

- an edge value: the layer's minimum or maximum, holding at least ``EDGE_SHARE`` (and less
  than half) of the sampled pixels, with a gap to the next value larger than ``GAP`` of the
  layer's range;
- a usual sentinel: -9999, -99999, -32768, -32767, 32767, 65535, +-3.4e38 (float32's
  extremes) or any |v| > 1e30, wherever it is; 0 on an unsigned layer and 255 on a uint8
  layer with fewer than 255 distinct values, when they hold ``EDGE_SHARE`` or more.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

EDGE_SHARE = 0.01
GAP = 0.10
SENTINELS = (-9999.0, -99999.0, -32768.0, -32767.0, 32767.0, 65535.0)
HUGE = 1e30  # |v| beyond this is a float fill (e.g. -3.4e38), not a measurement


def _value(v: float) -> str:
    return f"{v:g}"


def nodata_hints(values: np.ndarray, dtype: str, nodata_values: Sequence[float]) -> list[str]:
    """One message per suspicious value of ``values`` (a sample of the layer's values as
    float32, its nodata values already removed or not: declared ones are never hinted)."""
    declared = {float(np.float32(v)) for v in nodata_values}
    values = values[np.isfinite(values)]
    values = values[~np.isin(values, np.asarray(sorted(declared), dtype=np.float32))]
    if not values.size:
        return []
    n = values.size
    hints: dict[float, str] = {}
    lo, hi = float(values.min()), float(values.max())
    span = hi - lo
    if span > 0:
        for edge, inner in ((lo, values[values > lo]), (hi, values[values < hi])):
            share = np.count_nonzero(values == edge) / n
            if not EDGE_SHARE <= share < 0.5 or not inner.size:  # most pixels: the data itself
                continue
            nearest = float(inner.min()) if edge == lo else float(inner.max())
            if abs(nearest - edge) > GAP * span:
                hints[edge] = (
                    f"value {_value(edge)} covers {100 * share:.3g}% of the sampled pixels at "
                    "the edge of its range, far from the next value; if it means nodata, add it "
                    "to nodata.values"
                )
    unsigned = np.dtype(dtype).kind == "u"
    for v in (*SENTINELS, *((0.0,) if unsigned else ())):
        count = np.count_nonzero(values == np.float32(v))
        if count and v not in hints and (v != 0.0 or count / n >= EDGE_SHARE):
            hints[v] = (
                f"value {_value(v)}, a usual nodata value, covers {100 * count / n:.3g}% of the "
                "sampled pixels; if it means nodata, add it to nodata.values"
            )
    if dtype == "uint8" and 255.0 not in hints:
        count = np.count_nonzero(values == 255)
        if count / n >= EDGE_SHARE and np.unique(values).size < 255:
            hints[255.0] = (
                f"value 255 covers {100 * count / n:.3g}% of the sampled pixels of a byte layer "
                "that uses few other values; if it means nodata, add it to nodata.values"
            )
    huge = values[np.abs(values) > HUGE]
    if huge.size and float(huge[0]) not in hints:
        hints[float(huge[0])] = (
            f"value {_value(float(huge[0]))} looks like a float nodata fill, not a measurement; "
            "if it means nodata, add it to nodata.values (or to the file's nodata tag)"
        )
    return [hints[v] for v in sorted(hints)]
