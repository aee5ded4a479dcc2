"""Peak-memory plots of the benchmark scripts (matplotlib, from the ``bench`` extra): without
matplotlib a plot is skipped with a message, and the JSON and markdown are written anyway."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _pyplot() -> Any | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def missing_matplotlib(path: Path) -> None:
    print(
        f"matplotlib is not installed, so {path.name} was not written: "
        "pip install matplotlib (or pip install -e '.[bench]')",
        file=sys.stderr,
    )


def plot_peaks(
    path: Path,
    bars: list[tuple[str, float | None, str]],
    *,
    title: str,
    limits: dict[str, float] | None = None,
) -> None:
    """Horizontal bars of peak RSS (log scale), one per case: (label, MB, status).

    A run stopped by a memory limit is drawn hatched at the memory it had reached;
    ``limits`` (label -> MB) are drawn as vertical lines."""
    plt = _pyplot()
    if plt is None:
        missing_matplotlib(path)
        return
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    bars = [b for b in bars if b[1]]
    if not bars:
        return
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(bars) + 1.6))
    ys = range(len(bars))
    for y, (_label, mb, status) in zip(ys, bars, strict=True):
        ok = status == "ok"
        ax.barh(y, mb, color="tab:blue" if ok else "tab:red", hatch=None if ok else "//")
        note = f"{mb:,.0f} MB" + ("" if ok else f" ({status})")
        ax.text(mb * 1.05, y, note, va="center", fontsize=8)
    for i, (name, mb) in enumerate((limits or {}).items()):
        ax.axvline(mb, color="grey", ls="--" if i % 2 == 0 else ":", lw=1)
        ax.text(mb, len(bars) - 0.4, f" {name}", fontsize=8, color="grey", va="top")
    ax.set_yticks(list(ys), [b[0] for b in bars], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(right=max(max(b[1] for b in bars), *(limits or {0: 0}).values()) * 3)
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("peak RSS of the process tree (MB, log scale)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_peak_vs_pixels(
    path: Path,
    series: dict[tuple[str, str], list[tuple[int, float]]],
    order: Sequence[str],
    layers: int,
) -> None:
    """Log-log lines of peak RSS against pixels per layer, per (runner, layout)."""
    plt = _pyplot()
    if plt is None:
        missing_matplotlib(path)
        return
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(7.5, 5))
    styles = {"tiled": "-", "striped": "--"}
    colors = dict(zip(order, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    for (runner, layout), pts in sorted(series.items(), key=lambda kv: order.index(kv[0][0])):
        pts.sort()
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            styles.get(layout, ":"),
            marker="o",
            color=colors.get(runner),
            label=f"{runner} ({layout})",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1e6:g} M"))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda x, _: ""))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
    ax.set_xlabel(f"pixels per layer ({layers} layers)")
    ax.set_ylabel("peak RSS of the process tree (MB)")
    ax.set_title("Peak memory vs raster size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
