"""Build the QGIS plugin zip for Plugins > Manage and Install Plugins > Install from ZIP.

    python scripts/build_qgis_plugin.py            # -> dist/windowed_classify_qgis-<version>.zip
    python scripts/build_qgis_plugin.py -o OUTDIR

No make, no pb_tool: QGIS wants a zip whose single top-level folder is the plugin (its name
is the plugin's id) with metadata.txt directly inside. The zip is reproducible (sorted
entries, fixed timestamps) and leaves out caches.
"""

from __future__ import annotations

import argparse
import configparser
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "qgis_plugin" / "windowed_classify_qgis"
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo", ".tmp"}
EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: the same bytes on every build


def metadata(plugin: Path = PLUGIN) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(plugin / "metadata.txt", encoding="utf-8")
    return dict(parser["general"])


def plugin_files(plugin: Path = PLUGIN) -> list[Path]:
    return sorted(
        p
        for p in plugin.rglob("*")
        if p.is_file()
        and not SKIP_DIRS.intersection(p.relative_to(plugin).parts)
        and p.suffix not in SKIP_SUFFIXES
    )


def build(out_dir: Path, plugin: Path = PLUGIN) -> Path:
    meta = metadata(plugin)
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
            z.writestr(info, path.read_bytes())
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
