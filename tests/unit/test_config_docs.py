"""The configuration reference is generated from the config keys: the committed
docs/configuration.md and configs/example.yaml are what scripts/config_docs.py writes now,
and example.yaml is a config the loader accepts, with every example it shows."""

from __future__ import annotations

import importlib.util
from dataclasses import fields
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from windowed_classify.cli import main
from windowed_classify.commands.example_config import yaml_value
from windowed_classify.config import REQUIRED, SECTIONS, load_config

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "the config keys changed: run python scripts/config_docs.py and commit the result"


def _script() -> ModuleType:
    """scripts/config_docs.py, loaded by path (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("config_docs", ROOT / "scripts/config_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _committed_example() -> str:
    return (ROOT / "configs" / "example.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["docs/configuration.md", "configs/example.yaml"])
def test_the_committed_file_is_what_the_script_writes_now(name: str) -> None:
    generated = {
        path.relative_to(ROOT).as_posix(): text for path, text in _script().outputs().items()
    }
    assert (ROOT / name).read_text(encoding="utf-8") == generated[name], REGENERATE


def test_the_script_check_mode_reports_a_stale_file(tmp_path: Path, monkeypatch) -> None:
    script = _script()
    stale = tmp_path / "configuration.md"
    stale.write_text("# an old reference\n", encoding="utf-8")
    monkeypatch.setattr(script, "ROOT", tmp_path)
    monkeypatch.setattr(script, "outputs", lambda: {stale: script.page()})
    assert script.main(["--check"]) == 1
    assert script.main([]) == 0
    assert script.main(["--check"]) == 0
    assert stale.read_text(encoding="utf-8") == script.page()


def test_example_config_prints_the_committed_example(capsys) -> None:
    assert main(["example-config"]) == 0
    assert capsys.readouterr().out == _committed_example()


def test_example_yaml_loads_and_holds_every_default(tmp_path: Path) -> None:
    """Its values are the defaults, but for the required keys and the examples it shows."""
    raw = yaml.safe_load(_committed_example())
    assert set(raw) == set(SECTIONS)
    cfg = load_config(raw, base_dir=tmp_path)
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            meta = f.metadata
            if meta["default"] is REQUIRED or meta["example"] is not None:
                continue
            expected = meta["check"](meta["default"], f.name, tmp_path)
            assert getattr(getattr(cfg, section), f.name) == expected, f"{section}.{f.name}"


def test_every_commented_example_is_a_value_the_loader_accepts(tmp_path: Path) -> None:
    """Uncommenting any one of the keys example.yaml shows as comments gives a valid config."""
    text = _committed_example()
    commented = [
        (section, f.name, f"  # {f.name}: {yaml_value(f.metadata['example'])}")
        for section, cls in SECTIONS.items()
        for f in fields(cls)
        if f.metadata["commented"]
    ]
    assert commented, "example.yaml shows no commented key"
    for section, key, line in commented:
        assert text.count(line + "\n") == 1, f"{section}.{key} is not shown commented"
        raw = yaml.safe_load(text.replace(line, line.replace("  # ", "  ", 1)))
        if (section, key) in (("rasters", "files"), ("rasters", "stac")):  # instead of folder
            del raw["rasters"]["folder"]
        cfg = load_config(raw, base_dir=tmp_path)
        assert getattr(getattr(cfg, section), key) is not None, f"{section}.{key}"
