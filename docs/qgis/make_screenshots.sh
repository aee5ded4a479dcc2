#!/usr/bin/env bash
# Takes the QGIS docs page's screenshots under Xvfb (needs: apt-get install qgis python3-qgis
# xvfb xauth; a venv with windowed_classify):
#   bash docs/qgis/make_screenshots.sh [VENV]     -> docs/qgis/*.png
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${1:-.venv}"
PY="$(cd "$VENV/bin" && pwd)/python"
work="$(mktemp -d /tmp/wc_shots.XXXXXX)"
data=/tmp/soil_project  # a short path for the dialog; a temporary one if it is taken
if [ -e "$data" ]; then data="$work/soil_project"; fi
trap 'rm -rf "$work"; [ "$data" = /tmp/soil_project ] && rm -rf "$data"' EXIT
"$PY" tests/qgis/stack_tools.py make "$data" --size 400
mkdir -p "$work/home" "$work/runtime" && chmod 700 "$work/runtime"
export HOME="$work/home" XDG_RUNTIME_DIR="$work/runtime" XDG_CACHE_HOME="$work/cache"
export QGIS_PLUGINPATH="$PWD/qgis_plugin" WINDOWED_CLASSIFY_PYTHON="$PY"
export WC_SHOTS_DATA="$data" WC_SHOTS_OUT="$PWD/docs/qgis" WC_SHOTS_PYTHON="$PY"
QT_QPA_PLATFORM=offscreen qgis_process.bin plugins enable windowed_classify_qgis >/dev/null
timeout 600 xvfb-run -a -s "-screen 0 1280x800x24" \
    qgis.bin --nologo --noversioncheck --code docs/qgis/make_screenshots.py
