"""A write error mid-run (disk full, file too large) is one message naming the output."""

from __future__ import annotations

import resource
import signal
from pathlib import Path

import pytest
from helpers import build_case, run_cli


def _limit_file_size(limit: int):  # noqa: ANN202 - a preexec_fn
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_names_the_output_and_leaves_nothing(tmp_path: Path) -> None:
    case = build_case(tmp_path, height=900, width=900)
    proba = tmp_path / "out" / "proba.tif"
    case.config["output"].update(probabilities=str(proba), probabilities_dtype="float32")
    case.config["nodata"]["threshold"] = 1
    # the statistics from the cache (no spill file): the first file to fill is the output
    case.config["processing"] = {"workers": 1, "cache_dir": str(tmp_path / "cache")}
    warm = {**case.config, "output": {"path": str(tmp_path / "warm" / "c.tif")}}
    assert run_cli(case.write_config("warm.yaml", warm), "--quiet").returncode == 0
    result = run_cli(
        case.write_config(),
        "--quiet",
        preexec_fn=_limit_file_size(400_000),  # the float32 bands need about 9.7 MB
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert f"cannot write the output {proba}" in errors[0] and "disk full" in errors[0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("threshold", [0, 1])
def test_a_full_disk_while_the_statistics_are_counted_leaves_nothing(
    tmp_path: Path, threshold: int
) -> None:
    """threshold 0: pass 2 counts the statistics, threshold 1: pass 1 does, before it; both
    spill the keys near each median beside the output; that file filling the disk is one
    line too, and it is removed."""
    case = build_case(tmp_path, height=900, width=900)
    case.config["nodata"]["threshold"] = threshold
    case.config["processing"] = {"workers": 1, "stats_cache": False}
    result = run_cli(case.write_config(), "--quiet", preexec_fn=_limit_file_size(300_000))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "statistics spill" in errors[0] and "disk full" in errors[0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []
