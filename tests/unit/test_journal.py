"""The resume journal's tile tracker and its save/load round trip (passes/journal.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import from_origin
from rasterio.windows import Window

from windowed_classify.errors import OutputError
from windowed_classify.inputs.grid import Grid
from windowed_classify.passes.journal import Journal, TileTracker, journal_path
from windowed_classify.passes.stats import LayerStats

GRID = Grid("EPSG:32633", from_origin(0, 0, 1, 1), width=700, height=300)


def bands(height: int) -> list[Window]:
    """Full-width row bands that straddle the 256-pixel tiles."""
    return [Window(0, r, GRID.width, min(height, GRID.height - r)) for r in range(0, 300, height)]


def test_a_tile_is_complete_only_when_every_window_over_it_is_written() -> None:
    windows = bands(100)  # tile row 0 (rows 0-255): windows 0, 1, 2; tile row 1: window 2
    tiles = TileTracker(GRID, windows, 256)
    assert tiles.done.shape == (2, 3)
    tiles.written(windows[0])
    assert tiles.complete == 0
    tiles.written(windows[2])  # rows 200-299: completes tile row 1, not row 0
    assert tiles.done[1].all() and not tiles.done[0].any()
    tiles.written(windows[1])
    assert tiles.complete == 6


def test_parts_write_only_incomplete_tiles_one_run_at_a_time() -> None:
    window = Window(0, 0, GRID.width, 300)
    tiles = TileTracker(GRID, [window], 256)
    done = np.zeros((2, 3), dtype=bool)
    done[0, 1] = True  # the middle tile of the first tile row
    tiles.mark_done(done)
    parts = list(tiles.parts(window))
    assert parts == [
        Window(0, 0, 256, 256),
        Window(512, 0, 188, 256),
        Window(0, 256, 700, 44),
    ]
    covered = np.zeros((300, 700), dtype=int)
    for p in parts:
        covered[p.row_off : p.row_off + p.height, p.col_off : p.col_off + p.width] += 1
    assert covered[:256, 256:512].sum() == 0 and (covered[:, :256] == 1).all()


def test_mark_done_drops_finished_windows_and_keeps_the_others() -> None:
    windows = bands(100)
    tiles = TileTracker(GRID, windows, 256)
    done = np.zeros((2, 3), dtype=bool)
    done[0] = True
    tiles.mark_done(done)
    assert tiles.todo() == windows[2:]  # window 2 still has rows in tile row 1
    tiles.written(windows[2])
    assert tiles.done.all()


def test_journal_round_trip_and_refusal_to_resume_another_run(tmp_path: Path) -> None:
    windows = bands(150)
    tiles = TileTracker(GRID, windows, 256)
    tiles.written(windows[0])
    stats = {"elev": LayerStats(1.5, 0.0, 3.0, 10, 2)}
    prints = {
        "tool_version": "x",
        "config": {"output": {"dtype": "uint8"}},
        "model_file": {"path": "m"},
        "inputs": {"elev": {"path": "e", "size": 1}},
    }
    path = journal_path(tmp_path / ".out.partial.tif")
    Journal(path, prints, stats, windows, tiles).save()

    back = Journal.load(path, GRID, prints)
    assert back.stats == stats and back.windows == windows
    assert (back.tiles.done == tiles.done).all()

    changed = {**prints, "inputs": {"elev": {"path": "e", "size": 2}}}
    with pytest.raises(OutputError, match=r"the covariate elev \(e\)"):
        Journal.load(path, GRID, changed)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(OutputError, match="unreadable"):
        Journal.load(path, GRID, prints)
