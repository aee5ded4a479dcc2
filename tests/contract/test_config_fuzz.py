"""Fuzz whole runs: a valid config with a few keys set to random values, dropped or unknown.

Every outcome is a run (exit 0) or one ``error:`` line (exit 2), never a traceback; and
``check`` agrees with the run's preparation: it passes exactly when the preparation does,
and when the preparation refuses, its error is among ``check``'s problems.
"""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

import pytest
from fuzzing import mutate, mutations
from helpers import build_case, write_yaml
from hypothesis import HealthCheck, event, given, settings

from windowed_classify import cli
from windowed_classify.commands.check import check
from windowed_classify.config import load_config
from windowed_classify.errors import ConfigError, UserError
from windowed_classify.prepare import Problems, gather

pytestmark = pytest.mark.slow


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(edits=mutations())
def test_mutated_configs_run_or_fail_in_one_line_and_check_agrees(
    tmp_path_factory: pytest.TempPathFactory, edits: list
) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    case = build_case(root, height=20, width=24)
    config = write_yaml(root / "config.yaml", mutate(case.config, edits))

    try:
        cfg = load_config(config)
    except ConfigError:
        cfg = None
    if cfg is not None:
        found = check(cfg, sample_pixels=1 << 12)
        try:
            gather(cfg, Problems()).prepared()
        except UserError as exc:
            assert not found.ok and str(exc) in found.problems, (str(exc), found.problems)
            event("refused before any work")
        else:
            assert found.ok, found.problems
            event("prepared")

    err, out = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out):
        code = cli.main([str(config), "--quiet", "--workers", "1"])
    errors = [ln for ln in err.getvalue().splitlines() if ln.startswith("error:")]
    event(f"exit {code}")
    assert code in (0, 2), err.getvalue()
    assert "Traceback" not in err.getvalue()
    if code == 2:
        assert len(errors) == 1, err.getvalue()
