"""Fuzz the config: random YAML structures and values, through load_config and through the
CLI. Every outcome is a Config or a UserError (CLI: exit 0 or 2), never another exception."""

from __future__ import annotations

import copy
import io
import string
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import yaml
from helpers import build_case, write_yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from windowed_classify import cli
from windowed_classify.config import SCHEMA, Config, load_config
from windowed_classify.errors import UserError

# Text without path separators or "~": every path a value makes stays under the test's folder.
SAFE = string.ascii_letters + string.digits + " ._-:,\x00éß" + "\u2603"
texts = st.text(alphabet=SAFE, max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | texts
    | st.sampled_from(
        [
            "nearest",
            "bilinear",
            ".tif",
            "uint8",
            "lzw",
            "threads",
            "a.tif",
            "",
            "a\x00.tif",
            "x\x00",
        ]
    )
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
keys = st.sampled_from([(s, k) for s, spec in SCHEMA.items() for k in spec])


@st.composite
def mutations(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """A few edits of a valid config: set a known or unknown key, drop one, replace a section."""
    edits = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["set", "set", "set", "unknown", "drop", "section"]))
        section, key = draw(keys)
        if kind == "unknown":
            key = draw(texts)
        edits.append((kind, (section, key, draw(values))))
    return edits


def mutate(config: dict[str, Any], edits: list) -> dict[str, Any]:
    cfg = copy.deepcopy(config)
    for kind, (section, key, value) in edits:
        if kind == "section":
            cfg[section] = value
            continue
        part = cfg.get(section)
        if not isinstance(part, dict):
            part = cfg[section] = {}
        if kind == "drop":
            part.pop(key, None)
        else:
            part[key] = value
    return cfg


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


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(edits=mutations())
def test_mutated_configs_through_the_cli(tmp_path_factory, edits: list) -> None:
    """A valid run's config with a few keys set to random values: exit 0 or a one-line error."""
    root = tmp_path_factory.mktemp("fuzz")
    case = build_case(root, height=20, width=24)
    cfg = mutate(case.config, edits)
    config = write_yaml(root / "config.yaml", cfg)
    err, out = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out):
        code = cli.main([str(config), "--quiet", "--workers", "1"])
    errors = [ln for ln in err.getvalue().splitlines() if ln.startswith("error:")]
    event(f"exit {code}")
    assert code in (0, 2), err.getvalue()
    assert "Traceback" not in err.getvalue()
    if code == 2:
        assert len(errors) == 1, err.getvalue()
