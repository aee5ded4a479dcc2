"""Build the QGIS plugin zip for Plugins > Manage and Install Plugins > Install from ZIP.

    python scripts/build_qgis_plugin.py            # -> dist/windowed_classify_qgis-<version>.zip
    python scripts/build_qgis_plugin.py -o OUTDIR

No make, no pb_tool: QGIS wants a zip whose single top-level folder is the plugin (its name
is the plugin's id) with metadata.txt directly inside. The plugin's version is the tool's
(windowed_classify/_version.py), stamped into the zip's metadata.txt: the checkout's says
``version=dev``. The zip is reproducible (sorted entries, fixed timestamps) and leaves out
caches.
"""

from __future__ import annotations

import argparse
import ast
import configparser
import re
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "qgis_plugin" / "windowed_classify_qgis"
VERSION_FILE = ROOT / "windowed_classify" / "_version.py"
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo", ".tmp"}
EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: the same bytes on every build


def tool_version(path: Path = VERSION_FILE) -> str:
    """``__version__`` of the tool, read without importing it (any Python 3 builds the zip)."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            return str(ast.literal_eval(node.value))
    raise SystemExit(f"{path} sets no __version__")


def stamped_metadata(plugin: Path, version: str) -> str:
    """metadata.txt with its version line set to ``version``."""
    text = (plugin / "metadata.txt").read_text(encoding="utf-8")
    text, count = re.subn(r"(?m)^version\s*=.*$", f"version={version}", text)
    if count != 1:
        raise SystemExit(f"{plugin / 'metadata.txt'} needs one 'version=' line, has {count}")
    return text


def metadata(text: str) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return dict(parser["general"])


def plugin_files(plugin: Path = PLUGIN) -> list[Path]:
    return sorted(
        p
        for p in plugin.rglob("*")
        if p.is_file()
        and not SKIP_DIRS.intersection(p.relative_to(plugin).parts)
        and p.suffix not in SKIP_SUFFIXES
    )


def build(out_dir: Path, plugin: Path = PLUGIN, version: str | None = None) -> Path:
    stamped = stamped_metadata(plugin, version or tool_version())
    meta = metadata(stamped)
    missing = [k for k in ("name", "version", "qgisminimumversion", "description") if k not in meta]
    if missing:
        raise SystemExit(f"{plugin / 'metadata.txt'} lacks {', '.join(missing)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{plugin.name}-{meta['version']}.zip"
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for path in plugin_files(plugin):
            info = zipfile.ZipInfo(f"{plugin.name}/{path.relative_to(plugin).as_posix()}", EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            data = path.read_bytes()
            if path == plugin / "metadata.txt":
                data = stamped.encode("utf-8")
            z.writestr(info, data)
    tmp.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-o", "--output", type=Path, default=ROOT / "dist", help="folder for the zip (dist/)"
    )
    args = parser.parse_args(argv)
    target = build(args.output)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
