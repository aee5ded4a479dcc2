"""``--progress json``: the machine-readable progress a front-end (the QGIS provider) reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import Case, build_case, load_report, run_main

from windowed_classify.passes import pass1


def events(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def stage_events(got: list[dict], stage: str) -> list[dict]:
    seen = [e for e in got if e["event"] == "progress" and e["stage"] == stage]
    assert seen[0]["done"] == 0, "a stage announces itself before any work"
    assert seen[-1]["done"] == seen[-1]["total"] > 0
    assert all(a["done"] <= b["done"] for a, b in zip(seen, seen[1:], strict=False))
    assert {"unit", "rate", "elapsed"} <= set(seen[-1])
    return seen


def test_json_progress_reports_the_pass_then_the_outputs(case: Case) -> None:
    """Counted from pass 2's reads, the statistics have no stage of their own: one read."""
    case.config["processing"] = {"stats_cache": False, "workers": 2}
    case.config["output"]["confidence"] = str(case.output.with_name("confidence.tif"))
    proc = run_main(case.write_config(), "--progress", "json")
    assert proc.returncode == 0, proc.stderr
    got = events(proc.stderr)
    stage_events(got, "pass2")
    assert not [e for e in got if e.get("stage") == "pass1"]
    finished = got[-1]
    assert finished["event"] == "finished"
    assert Path(finished["main"]) == Path(finished["outputs"]["classes"]) == case.output
    assert Path(finished["outputs"]["confidence"]).exists()
    assert Path(finished["report"]) == case.output.with_name("prediction.report.json")
    assert "it/s" not in proc.stderr and "px/s" not in proc.stderr  # no tqdm bars


@pytest.mark.usefixtures("small_guide")
def test_json_progress_reports_a_read_for_the_statistics_as_pass1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the statistics need a read of their own (many pixels to fill), it is ``pass1``,
    from 0 to its total, while pass 2 waits after its guide windows."""
    monkeypatch.setattr(pass1, "MAX_DEFERRED", -1.0)
    case = build_case(tmp_path, height=600, width=520, layout=("tiled", 16))
    case.config["nodata"]["threshold"] = 1
    case.config["processing"] = {"stats_cache": False, "workers": 2, "memory_mb": 1}
    proc = run_main(case.write_config(), "--progress", "json")
    assert proc.returncode == 0, proc.stderr
    got = events(proc.stderr)
    stage_events(got, "pass1")
    stage_events(got, "pass2")
    assert load_report(case.output)["pass1"] == "separate"


def test_no_json_and_no_bars_by_default_when_quiet(case: Case) -> None:
    proc = run_main(case.write_config(), "--quiet")
    assert proc.returncode == 0 and events(proc.stderr) == []
    assert "pass 2" not in proc.stderr
