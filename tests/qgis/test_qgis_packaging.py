"""scripts/build_qgis_plugin.py: the zip QGIS's 'Install from ZIP' accepts."""

from __future__ import annotations

import configparser
import importlib.util
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "build_qgis_plugin.py"


def _builder():
    spec = importlib.util.spec_from_file_location("build_qgis_plugin", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_zip_holds_the_plugin_folder_with_metadata_at_its_top(tmp_path):
    import windowed_classify

    builder = _builder()
    plugin = tmp_path / "src" / "windowed_classify_qgis"
    shutil.copytree(builder.PLUGIN, plugin)
    (plugin / "__pycache__").mkdir(exist_ok=True)
    (plugin / "__pycache__" / "stray.cpython-311.pyc").write_bytes(b"\0")  # never packed
    target = builder.build(tmp_path / "a", plugin)
    version = windowed_classify.__version__  # the plugin's version is the tool's
    assert target.name == f"windowed_classify_qgis-{version}.zip"
    with zipfile.ZipFile(target) as z:
        names = z.namelist()
        metadata = z.read("windowed_classify_qgis/metadata.txt").decode("utf-8")
    assert all(n.startswith("windowed_classify_qgis/") for n in names)
    assert {n.split("/")[0] for n in names} == {"windowed_classify_qgis"}
    for needed in ("__init__.py", "metadata.txt", "plugin.py", "provider.py", "client.py"):
        assert f"windowed_classify_qgis/{needed}" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    meta = configparser.ConfigParser(interpolation=None)
    meta.read_string(metadata)
    general = meta["general"]
    assert general["version"] == version
    assert general["hasProcessingProvider"] == "yes"
    assert general["qgisMinimumVersion"] == "3.22"
    assert general["icon"] and f"windowed_classify_qgis/{general['icon']}" in names
    # reproducible: the same bytes on a second build
    again = builder.build(tmp_path / "b", plugin)
    assert again.read_bytes() == target.read_bytes()


def test_the_version_is_stamped_not_written_by_hand(tmp_path):
    builder = _builder()
    source = configparser.ConfigParser(interpolation=None)
    source.read(builder.PLUGIN / "metadata.txt", encoding="utf-8")
    assert source["general"]["version"] == "dev"  # the checkout's; the zip's is the tool's
    target = builder.build(tmp_path, builder.PLUGIN, version="9.8.7")
    with zipfile.ZipFile(target) as z:
        stamped = z.read("windowed_classify_qgis/metadata.txt").decode("utf-8")
    assert target.name == "windowed_classify_qgis-9.8.7.zip"
    assert "\nversion=9.8.7\n" in stamped and "version=dev" not in stamped
    plugin = tmp_path / "p" / "windowed_classify_qgis"
    shutil.copytree(builder.PLUGIN, plugin)
    meta = plugin / "metadata.txt"
    meta.write_text(meta.read_text(encoding="utf-8").replace("version=dev\n", ""), "utf-8")
    with pytest.raises(SystemExit, match="needs one 'version=' line, has 0"):
        builder.build(tmp_path / "q", plugin)


def test_command_line_prints_the_zip(tmp_path, capsys):
    assert _builder().main(["-o", str(tmp_path)]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed.parent == tmp_path and zipfile.is_zipfile(printed)
