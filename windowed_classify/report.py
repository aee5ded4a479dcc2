"""The JSON run report written beside the output (prediction.tif -> prediction.report.json)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .memory import rusage_peaks_mb

if TYPE_CHECKING:
    from .outputs.writer import OutputSummary
    from .passes.prepared import Prepared
    from .passes.stats import LayerStats


def build_report(
    prep: Prepared,
    stats: dict[str, LayerStats],
    summary: OutputSummary,
    timing: dict[str, float],
    extra: dict[str, Any],
    tree_peak_mb: float | None = None,
) -> dict[str, Any]:
    """The report; ``peak_memory_mb`` is the process tree's (workers included) when known.

    A classification reports its legend and the pixel count of every code; a regression the
    statistics of its values instead (``statistics.prediction``). Other float outputs add
    their statistics, the AOA its method and the share of pixels inside."""
    cfg, grid, nodata = prep.config, prep.grid, prep.output_config.nodata
    assert nodata is not None  # resolved for the task by prepare
    own, worker = rusage_peaks_mb()
    peaks = [v for v in (own, tree_peak_mb) if v is not None]
    results: dict[str, Any] = {"task": prep.task}
    if prep.task == "regression":
        results |= {
            "output_nodata": _plain_number(nodata),
            "masked_pixels": summary.masked,
        }
    else:
        results |= {
            "legend": prep.legend.as_dict(),
            "legend_source": prep.legend.source,
            "output_nodata": nodata,
            "pixel_counts": summary.pixel_counts,
            "masked_pixels": summary.masked,
        }
    if summary.statistics:
        results["statistics"] = summary.statistics
    if prep.aoa is not None:
        results["aoa"] = prep.aoa.summary() | _inside(summary.aoa)
    return {
        "tool": "windowed_classify",
        "version": __version__,
        "output": str(prep.output_config.path),
        "config": str(cfg.source) if cfg.source else None,
        "model": str(prep.model_config.path),
        "grid": {
            "crs": grid.crs.to_string() if grid.crs else None,
            "transform": list(grid.transform)[:6],
            "width": grid.width,
            "height": grid.height,
        },
        "features": [layer.name for layer in prep.layers],
        "features_source": prep.schema.source,
        # false: the order is model.features' alone, which nothing could verify
        "feature_order_from_names": not prep.schema.trusted,
        "ignored_layers": prep.ignored,
        "nodata": {
            "values": list(cfg.nodata.values),
            "use_file_nodata": cfg.nodata.use_file_nodata,
            "threshold": cfg.nodata.threshold,
        },
        "layers": {
            layer.name: {
                "path": str(layer.path),
                "band": layer.band,
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
        **results,
        "timing": {k: round(v, 3) for k, v in timing.items()},
        "peak_memory_mb": max(peaks) if peaks else None,
        "peak_memory_process_mb": own,
        "peak_memory_largest_worker_mb": worker,
        **extra,
    }


MOSTLY_MASKED = 0.9  # a share of masked pixels that deserves a word


def masked_warning(prep: Prepared, stats: dict[str, LayerStats], masked: int) -> str | None:
    """A warning when most of the output is masked, with the likeliest cause."""
    pixels = prep.grid.pixels
    share = masked / max(pixels, 1)
    if share < MOSTLY_MASKED:
        return None
    threshold = prep.config.nodata.threshold
    causes = []
    worst = sorted(
        ((s.nodata_count / max(pixels, 1), name) for name, s in stats.items()), reverse=True
    )
    for nodata, name in worst[:3]:
        if nodata >= 0.5:
            layer = next(la for la in prep.layers if la.name == name)
            where = " (outside its extent, warped onto the grid)" if layer.warp else ""
            causes.append(f"layer '{name}' is nodata on {100 * nodata:.0f}% of the grid{where}")
    if not causes:
        causes.append(
            f"nodata.threshold is {threshold}: a pixel is masked when more than {threshold} of "
            f"its {len(prep.layers)} layers are nodata, and the layers' nodata fall in different "
            "places; a higher threshold fills them with medians"
        )
    return f"{100 * share:.1f}% of the output is masked; likeliest cause: " + "; ".join(causes)


def _plain_number(value: float) -> float | int | str:
    """A nodata value for JSON: a whole number as an int, NaN as "nan"."""
    value = float(value)
    if value != value:
        return "nan"
    return int(value) if value.is_integer() else value


def _inside(counts: dict[str, int] | None) -> dict[str, Any]:
    """The AOA's share of unmasked pixels: inside / (inside + outside)."""
    if counts is None:
        return {}
    total = counts["inside"] + counts["outside"]
    share = counts["inside"] / total if total else None
    return {
        "inside_pixels": counts["inside"],
        "outside_pixels": counts["outside"],
        "inside_share": share,
    }


STATS_STATES = {
    "computed": "computed (and kept in the statistics cache)",
    "used": "from the statistics cache",
    "partly used": "partly from the statistics cache, the rest computed",
    "disabled": "computed (statistics cache disabled)",
    "journal": "from the interrupted run's journal (resumed)",
}


def summary(report: dict[str, Any]) -> str:
    """What the CLI prints after a run: every file written, where the statistics came from,
    the time of each pass and the peak memory."""
    lines = [f"classified: {report['output']}", "written:"]
    files = {**report["outputs"], "report": str(sibling_report(report["output"]))}
    width = max(len(kind) for kind in files)
    lines += [f"  {kind:<{width}}  {path}" for kind, path in files.items()]
    lines.append(f"statistics: {STATS_STATES.get(report['stats_cache'], report['stats_cache'])}")
    t = report["timing"]
    lines.append(
        f"time: pass 1 {t['pass1_seconds']:.1f} s, pass 2 {t['pass2_seconds']:.1f} s, "
        f"total {t['total_seconds']:.1f} s; peak memory {report['peak_memory_mb']} MB"
    )
    return "\n".join(lines)


def sibling_report(output: str) -> Path:
    """prediction.tif -> prediction.report.json."""
    path = Path(output)
    return path.with_name(path.stem + ".report.json")
