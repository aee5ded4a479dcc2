"""Fuzz the config loader: random YAML structures and text. Every outcome is a Config or a
UserError, never another exception (tests/contract/test_config_fuzz.py fuzzes whole runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from fuzzing import SAFE, values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from windowed_classify.config import SCHEMA, Config, load_config
from windowed_classify.errors import UserError


def load(path: Path) -> Config | UserError:
    try:
        return load_config(path)
    except UserError as exc:
        assert str(exc).strip(), "a user error with an empty message"
        return exc


FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(raw=values | st.dictionaries(st.sampled_from(list(SCHEMA) + ["extra"]), values))
def test_random_structures_through_load_config(tmp_path: Path, raw: Any) -> None:
    path = tmp_path / "random.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    load(path)


@FUZZ
@given(text=st.text(alphabet=SAFE + "{}[]&*!|>'\"%@`#\n\t-?", max_size=80))
def test_random_text_through_load_config(tmp_path: Path, text: str) -> None:
    path = tmp_path / "text.yaml"
    path.write_text(text, encoding="utf-8")
    load(path)
