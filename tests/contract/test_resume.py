"""Resume after an interruption: the journal, its fingerprint, and the same pixels."""

from __future__ import annotations

import base64
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from helpers import Case, build_case, load_report, package_root, run_main

from windowed_classify import run
from windowed_classify.errors import OutputError
from windowed_classify.inputs.grid import Grid
from windowed_classify.outputs.writer import partial_path
from windowed_classify.passes.journal import TileTracker, journal_path


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def _config(case: Case, out: Path, **processing: Any) -> dict[str, Any]:
    cfg = json.loads(json.dumps(case.config))
    cfg["output"] = {
        "path": str(out / "classes.tif"),
        "probabilities": str(out / "proba.tif"),
        "confidence": str(out / "conf.tif"),
    }
    cfg["processing"] = {"memory_mb": 1, "checkpoint_seconds": 0, **processing}
    return cfg


def _done_tiles(journal: Path) -> int:
    data = json.loads(journal.read_text())
    return int(np.unpackbits(np.frombuffer(base64.b64decode(data["done_tiles"]), np.uint8)).sum())


@pytest.mark.parametrize(
    "layout,stop_after",
    [(("tiled", 64), 3), (("tiled", 64), 0), (("striped", 7), 5), (("striped", 1), 3)],
)
def test_interrupted_then_resumed_equals_uninterrupted(
    tmp_path: Path, interrupt: Any, layout: Any, stop_after: int
) -> None:
    """Striped inputs give windows that straddle output tiles: the resumed run must write
    only the incomplete tiles' parts of them."""
    case = build_case(tmp_path, kind="forest", height=700, width=610, layout=layout)
    whole = _config(case, tmp_path / "whole")
    run(whole, workers=1)

    cfg = _config(case, tmp_path / "out")
    interrupt(cfg, stop_after)
    out = tmp_path / "out"
    temp = partial_path(out / "classes.tif")
    assert temp.exists() and journal_path(temp).exists()
    assert not (out / "classes.tif").exists()
    assert (_done_tiles(journal_path(temp)) > 0) == (stop_after > 0)

    report = run(cfg, workers=2, resume=True)
    assert report["resumed"] is True and report["stats_cache"] == "journal"
    for name in ("classes.tif", "proba.tif", "conf.tif"):
        np.testing.assert_array_equal(_read(out / name), _read(tmp_path / "whole" / name))
    assert report["pixel_counts"] == load_report(tmp_path / "whole" / "classes.tif")["pixel_counts"]
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


def test_resume_refuses_when_a_covariate_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interrupt: Any
) -> None:
    case = build_case(tmp_path, height=300, width=300)
    cfg = _config(case, tmp_path / "out")
    interrupt(cfg, 2)
    touched = case.folder / case.stack.layers[1].relpath
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    config_file = case.write_config(config=cfg)
    result = run_main(config_file, "--resume")
    assert result.returncode == 2, result.stderr
    assert "cannot resume" in result.stderr and case.stack.layers[1].name in result.stderr
    assert "without --resume" in result.stderr and "Traceback" not in result.stderr
    # the interrupted run's files are kept; without --resume it starts over and says so
    result = run_main(config_file)
    assert result.returncode == 0, result.stderr
    assert "--resume" in result.stderr
    assert load_report(tmp_path / "out" / "classes.tif")["resumed"] is False


def test_resume_refuses_when_the_config_or_model_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interrupt: Any
) -> None:
    case = build_case(tmp_path, height=300, width=300)
    cfg = _config(case, tmp_path / "out")
    interrupt(cfg, 2)
    other = json.loads(json.dumps(cfg))
    other["nodata"]["threshold"] = 1
    with pytest.raises(OutputError, match=r"nodata\.threshold"):
        run(other, workers=1, resume=True)
    st = case.model_path.stat()
    case.model_path.write_bytes(case.model_path.read_bytes() + b"\0")
    with pytest.raises(OutputError, match="model file"):
        run(cfg, workers=1, resume=True)
    # what is free to change: workers, memory, engine
    case.model_path.write_bytes(case.model_path.read_bytes()[:-1])
    os.utime(case.model_path, ns=(st.st_atime_ns, st.st_mtime_ns))
    cfg["processing"] = {"memory_mb": 64, "engine": "processes"}
    assert run(cfg, workers=2, resume=True)["resumed"] is True


def test_resume_without_a_journal_starts_from_the_beginning(case: Case) -> None:
    report = run(case.config, workers=1, resume=True)
    assert report["resumed"] is False and report["stats_cache"] != "journal"
    assert case.output.exists()


def test_sigkill_then_resume_matches_uninterrupted(tmp_path: Path) -> None:
    """A real crash: SIGKILL in the middle of pass 2, then --resume from the command line."""
    case = build_case(tmp_path, kind="forest", height=1500, width=1500, names=("a", "b"))
    whole = _config(case, tmp_path / "whole")
    run(whole, workers=1)
    cfg = _config(case, tmp_path / "out", workers=1)
    config_file = case.write_config(config=cfg)
    journal = journal_path(partial_path(tmp_path / "out" / "classes.tif"))
    env = dict(os.environ, PYTHONPATH=str(package_root()))
    proc = subprocess.Popen(
        [sys.executable, "-m", "windowed_classify", str(config_file), "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if _done_tiles(journal) >= 4:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.01)
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (tmp_path / "out" / "classes.tif").exists()
    done = _done_tiles(journal)
    assert 4 <= done < math.ceil(1500 / 256) ** 2

    result = run_main(config_file, "--resume")
    assert result.returncode == 0, result.stderr
    report = load_report(tmp_path / "out" / "classes.tif")
    assert report["resumed"] is True
    for name in ("classes.tif", "proba.tif", "conf.tif"):
        np.testing.assert_array_equal(
            _read(tmp_path / "out" / name), _read(tmp_path / "whole" / name)
        )


def test_tile_parts_cover_exactly_the_incomplete_tiles() -> None:
    grid = Grid(None, None, 700, 600)  # type: ignore[arg-type]
    from rasterio.windows import Window

    windows = [Window(0, r, 700, min(100, 600 - r)) for r in range(0, 600, 100)]
    tiles = TileTracker(grid, windows, 256)
    for w in windows[:3]:  # rows 0..300: the first tile row (0..256) is complete
        tiles.written(w)
    assert tiles.done[0].all() and not tiles.done[1:].any()
    resumed = TileTracker(grid, windows, 256)
    resumed.mark_done(tiles.done)
    assert [(w.row_off, w.height) for w in resumed.todo()] == [
        (200, 100),
        (300, 100),
        (400, 100),
        (500, 100),
    ]
    parts = list(resumed.parts(resumed.todo()[0]))
    assert [(p.col_off, p.row_off, p.width, p.height) for p in parts] == [(0, 256, 700, 44)]
    covered = np.zeros((600, 700), bool)
    for w in resumed.todo():
        for p in resumed.parts(w):
            assert not covered[
                p.row_off : p.row_off + p.height, p.col_off : p.col_off + p.width
            ].any()
            covered[p.row_off : p.row_off + p.height, p.col_off : p.col_off + p.width] = True
    assert covered[256:].all() and not covered[:256].any()
