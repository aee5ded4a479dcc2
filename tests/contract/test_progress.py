"""``--progress json``: the machine-readable progress a front-end (the QGIS provider) reads."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import Case, run_main


def events(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_json_progress_reports_both_passes_then_the_outputs(case: Case) -> None:
    case.config["processing"] = {"stats_cache": False, "workers": 2}
    case.config["output"]["confidence"] = str(case.output.with_name("confidence.tif"))
    proc = run_main(case.write_config(), "--progress", "json")
    assert proc.returncode == 0, proc.stderr
    got = events(proc.stderr)
    progress = [e for e in got if e["event"] == "progress"]
    for stage in ("pass1", "pass2"):
        seen = [e for e in progress if e["stage"] == stage]
        assert seen[0]["done"] == 0, "a stage announces itself before any work"
        assert seen[-1]["done"] == seen[-1]["total"] > 0
        assert all(a["done"] <= b["done"] for a, b in zip(seen, seen[1:], strict=False))
        assert {"unit", "rate", "elapsed"} <= set(seen[-1])
    stages = [e["stage"] for e in progress]
    assert stages.index("pass2") > max(i for i, s in enumerate(stages) if s == "pass1")
    finished = got[-1]
    assert finished["event"] == "finished"
    assert Path(finished["main"]) == Path(finished["outputs"]["classes"]) == case.output
    assert Path(finished["outputs"]["confidence"]).exists()
    assert Path(finished["report"]) == case.output.with_name("prediction.report.json")
    assert "it/s" not in proc.stderr and "px/s" not in proc.stderr  # no tqdm bars


def test_no_json_and_no_bars_by_default_when_quiet(case: Case) -> None:
    proc = run_main(case.write_config(), "--quiet")
    assert proc.returncode == 0 and events(proc.stderr) == []
    assert "pass 2" not in proc.stderr
