"""What the float rasters share (a regression's values, spread, quantiles, DI): their exact
statistics in the report and a colour ramp stretched on them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..ramps import write_ramp_style
from ..tallies import FloatTally
from .base import OutputKind, RasterSpec

if TYPE_CHECKING:
    from ..tallies import Tally


class FloatRaster(OutputKind):
    """A kind whose raster holds float values: counted in full, styled with a ramp."""

    report_key: str | None = None  # its key among the report's statistics (default: key)

    def tally(self, spec: RasterSpec) -> Tally:
        return FloatTally(spec.nodata, spec.dtype, spec.count, spec.at_most)

    def report(self, spec: RasterSpec, bands: list[dict[str, Any]]) -> dict[str, Any]:
        """The report's statistics of this raster: its band's, by default."""
        return bands[0]

    def style(self, spec: RasterSpec, tally: Tally | None, pixels: int) -> dict[str, Path]:
        assert isinstance(tally, FloatTally) and tally.results is not None
        return write_ramp_style(spec.path, tally.results, pixels, spec.styled_band)
