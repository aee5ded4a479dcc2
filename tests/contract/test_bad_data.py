"""A corrupt input raster mid-run: one error naming the file and the window, exit 2, no
traceback, nothing under the output's name; in pass 1 and pass 2, in every engine."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
from helpers import Case, build_case, corrupt_tile, run_main

from windowed_classify.errors import InputError

ENGINES = {
    "serial": ["--workers", "1"],
    "threads": ["--workers", "2"],
    "processes": ["--workers", "2"],
}


def make_case(root: Path, engine: str) -> tuple[Case, Path]:
    case = build_case(root, height=64, width=64, layout=("tiled", 16))
    case.config["processing"] = {"engine": "processes" if engine == "processes" else "threads"}
    return case, case.write_config()


def assert_read_error(proc, case: Case, window: str) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    message = lines[0]
    assert str(case.folder / "slope.tif") in message, message
    assert window in message, message
    assert not case.output.exists()
    assert not case.output.with_name("prediction.report.json").exists()
    return message


@pytest.mark.parametrize("engine", list(ENGINES))
def test_corrupt_tile_in_pass1(tmp_path: Path, engine: str) -> None:
    case, config = make_case(tmp_path, engine)
    corrupt_tile(case.folder / "slope.tif", row=1, col=2)
    proc = run_main(config, "--quiet", *ENGINES[engine], cwd=case.root)
    # pass 1's guide reads windows of the stack: here the one window of the 64 x 64 grid
    message = assert_read_error(proc, case, "(col_off=0, row_off=0, width=64, height=64)")
    assert re.search(r"IReadBlock failed|TIFFReadEncodedTile|LZW", message), message


@pytest.mark.parametrize("engine", list(ENGINES))
def test_corrupt_tile_in_pass2(tmp_path: Path, engine: str) -> None:
    """Statistics cached by a good run; the tile goes bad after: pass 2's read fails."""
    case, config = make_case(tmp_path, engine)
    first = run_main(config, "--quiet", "--workers", "1", cwd=case.root)
    assert first.returncode == 0, first.stderr
    case.output.unlink()
    case.output.with_name("prediction.report.json").unlink()
    corrupt_tile(case.folder / "slope.tif", row=1, col=2)
    proc = run_main(config, "--quiet", *ENGINES[engine], cwd=case.root)
    assert_read_error(proc, case, "(col_off=0, row_off=0, width=64, height=64)")


def test_read_error_survives_pickling() -> None:
    """Process workers send the error back pickled: same class, same message."""
    err = InputError("cannot read raster a.tif (layer 'a') in window (col_off=0, ...)")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is InputError and str(back) == str(err)
