"""The config reference is generated from the keys: the README and example.yaml must agree."""

from __future__ import annotations

from dataclasses import fields

import yaml

from windowed_classify.config import REQUIRED, SCHEMA, SECTIONS, load_config
from windowed_classify.config_docs import (
    BEGIN,
    END,
    EXAMPLE,
    README,
    example_yaml,
    readme_table,
)

REGENERATE = "run: python -m windowed_classify.config_docs --write"


def test_the_readme_table_is_the_generated_one() -> None:
    text = README.read_text(encoding="utf-8")
    table = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert table == readme_table(), REGENERATE


def test_example_yaml_is_the_generated_one() -> None:
    assert EXAMPLE.read_text(encoding="utf-8") == example_yaml(), REGENERATE


def test_every_key_is_in_the_table_and_in_example_yaml() -> None:
    table = readme_table()
    raw = yaml.safe_load(example_yaml())
    text = example_yaml()
    for section, keys in SCHEMA.items():
        for key in keys:
            assert f"| `{section}.{key}` |" in table
            assert key in raw[section] or f"  # {key}: " in text, f"{section}.{key}"


def test_example_yaml_loads_and_shows_every_default(tmp_path) -> None:
    """example.yaml is a valid config whose values are the defaults, except the required keys
    and the examples it shows."""
    raw = yaml.safe_load(example_yaml())
    cfg = load_config(raw, base_dir=tmp_path)
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            if f.metadata["default"] is REQUIRED or f.metadata["example"] is not None:
                continue
            typed = getattr(getattr(cfg, section), f.name)
            check = f.metadata["check"]
            assert typed == check(f.metadata["default"], f.name, tmp_path), f"{section}.{f.name}"
