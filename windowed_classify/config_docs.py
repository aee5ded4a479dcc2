"""The config reference generated from the keys themselves (``config.key``): the README's
table and configs/example.yaml. ``python -m windowed_classify.config_docs --write`` rewrites
both; a test fails when they disagree with the code."""

from __future__ import annotations

import sys
import textwrap
from dataclasses import fields
from pathlib import Path
from typing import Any

import yaml

from .config import REQUIRED, SECTIONS

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
EXAMPLE = ROOT / "configs" / "example.yaml"
BEGIN, END = "<!-- config-table:begin -->", "<!-- config-table:end -->"

EXAMPLE_HEADER = """\
# windowed_classify: every config key, with its default (generated from windowed_classify/
# config.py by `python -m windowed_classify.config_docs --write`). Run with
#   python -m windowed_classify configs/example.yaml
# Relative paths resolve against the folder this file is in. An unknown key is an error.
"""


def _yaml(value: Any) -> str:
    """One value as YAML flow text (lists in brackets, null, true)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return text[: -len("...")].strip() if text.endswith("...") else text


def readme_table() -> str:
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            m = f.metadata
            shown = m["shown"] or ("required" if m["default"] is REQUIRED else None)
            default = shown if shown else f"`{_yaml(m['default'])}`"
            rows.append(f"| `{section}.{f.name}` | {default} | {m['help']} |")
    return "\n".join(rows)


def example_yaml() -> str:
    out = [EXAMPLE_HEADER]
    for section, cls in SECTIONS.items():
        out.append(f"\n{section}:\n")
        for f in fields(cls):
            m = f.metadata
            text = ("Required: " if m["default"] is REQUIRED else "") + m["help"]
            if m["details"]:
                text += ". " + m["details"]
            for line in textwrap.wrap(text.replace("`", ""), 88):
                out.append(f"  # {line}\n")
            value = m["example"] if m["example"] is not None else m["default"]
            prefix = "# " if m["commented"] else ""
            out.append(f"  {prefix}{f.name}: {_yaml(value)}\n")
    return "".join(out)


def readme_with_table(readme: str) -> str:
    head, _, rest = readme.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{readme_table()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    if argv != ["--write"]:
        print(example_yaml())
        print(readme_table())
        return 0
    EXAMPLE.write_text(example_yaml(), encoding="utf-8")
    README.write_text(readme_with_table(README.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {EXAMPLE} and the table in {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
