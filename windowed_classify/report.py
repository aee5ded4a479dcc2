"""The JSON run report written beside the output (prediction.tif -> prediction.report.json)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from . import __version__

if TYPE_CHECKING:
    from .api import Prepared
    from .stats import LayerStats


def peak_memory_mb() -> dict[str, float | None]:
    """Peak resident memory of this process and of its largest child (worker), in MB."""
    try:
        import resource
    except ImportError:  # Windows
        return {"process": None, "largest_worker": None}
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale / 2**20
    return {"process": round(own, 1), "largest_worker": round(kids, 1) if kids else None}


def build_report(
    prep: Prepared,
    stats: dict[str, LayerStats],
    pixel_counts: dict[str, int],
    timing: dict[str, float],
    extra: dict[str, Any],
) -> dict[str, Any]:
    cfg, grid = prep.config, prep.grid
    memory = peak_memory_mb()
    return {
        "tool": "windowed_classify",
        "version": __version__,
        "output": str(cfg.output.path),
        "config": str(cfg.source) if cfg.source else None,
        "model": str(cfg.model.path),
        "grid": {
            "crs": grid.crs.to_string() if grid.crs else None,
            "transform": list(grid.transform)[:6],
            "width": grid.width,
            "height": grid.height,
        },
        "features": [layer.name for layer in prep.layers],
        "features_source": prep.schema.source,
        "ignored_layers": prep.ignored,
        "nodata": {
            "values": list(cfg.nodata.values),
            "use_file_nodata": cfg.nodata.use_file_nodata,
            "threshold": cfg.nodata.threshold,
        },
        "layers": {
            layer.name: {
                "path": str(layer.path),
                "median": stats[layer.name].median,
                "min": stats[layer.name].min,
                "max": stats[layer.name].max,
                "valid_count": stats[layer.name].valid_count,
                "nodata_count": stats[layer.name].nodata_count,
                "nodata_values": list(layer.nodata_values),
            }
            for layer in prep.layers
        },
        "median_second_reads": [name for name, s in stats.items() if s.second_read],
        "legend": prep.legend.as_dict(),
        "legend_source": prep.legend.source,
        "output_nodata": cfg.output.nodata,
        "pixel_counts": pixel_counts,
        "masked_pixels": pixel_counts[str(cfg.output.nodata)],
        "timing": {k: round(v, 3) for k, v in timing.items()},
        "peak_memory_mb": memory["process"],
        "peak_memory_worker_mb": memory["largest_worker"],
        **extra,
    }
