"""``example-config``: every config key with its default and help, as a YAML file to edit.

Generated from the keys themselves (``config.key``), so it always matches the installed
version; configs/example.yaml in the repository is this text (scripts/config_docs.py).
"""

from __future__ import annotations

import textwrap
from dataclasses import fields
from typing import Any

import yaml

from ..config import REQUIRED, SECTIONS

HEADER = """\
# windowed_classify: every config key, with its default and what it does. Made by
#   python -m windowed_classify example-config > config.yaml
# Required keys are shown with an example value; optional outputs are commented out.
# Relative paths resolve against the folder this file is in. An unknown key is an error.
"""


def yaml_value(value: Any) -> str:
    """One value as YAML flow text (lists in brackets, null, true)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return text[: -len("...")].strip() if text.endswith("...") else text


def example_yaml() -> str:
    out = [HEADER]
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
            out.append(f"  {prefix}{f.name}: {yaml_value(value)}\n")
    return "".join(out)
