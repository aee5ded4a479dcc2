#!/usr/bin/env bash
# CI step of the QGIS plugin (issue #15), separate from the main suite so that a QGIS install
# problem is reported as such:
#   bash .ci/qgis.sh [VENV]      VENV: the tool's venv (default .venv, the one .ci/run makes)
# 1. installs Debian's QGIS (qgis + python3-qgis: 3.22 on bookworm, ~1.1 GB) unless present;
# 2. ruff on the plugin and its packaging script, then builds the plugin zip;
# 3. runs tests/qgis/qgis_integration.py with the system python3 (the one python3-qgis is
#    built for) against the tool in VENV: qgis_process offscreen, plus a PyQGIS process for
#    cancel/resume and the styled layer. Its last line is 'N passed, N failed'.
# The pure unit tests (tests/qgis/test_*.py) run in the main suite, not here.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${1:-.venv}"
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
    echo "qgis.sh: no python at $PY: give the venv where windowed_classify is installed" >&2
    exit 1
fi
PY="$(cd "$(dirname "$PY")" && pwd)/python"

echo "== QGIS plugin: QGIS (Debian qgis + python3-qgis) =="
started=$(date +%s)
if command -v qgis_process.bin >/dev/null && /usr/bin/python3 -c "import qgis.core" 2>/dev/null; then
    echo "QGIS already installed"
else
    log="$(mktemp /tmp/qgis-apt.XXXXXX.log)"
    echo "installing qgis python3-qgis (about a minute; log: $log)"
    if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends qgis python3-qgis; } >"$log" 2>&1; then
        echo "##################################################################" >&2
        echo "QGIS INSTALL FAILED: apt-get install qgis python3-qgis did not work." >&2
        echo "This is a problem of the machine's packages, not of the plugin." >&2
        echo "Last lines of $log:" >&2
        tail -n 30 "$log" >&2
        echo "##################################################################" >&2
        exit 1
    fi
    echo "installed in $(( $(date +%s) - started )) s"
fi
if ! version="$(QT_QPA_PLATFORM=offscreen qgis_process.bin --version 2>/dev/null | head -n 1)"; then
    echo "QGIS INSTALL BROKEN: qgis_process.bin --version fails" >&2
    exit 1
fi
echo "$version"

echo "== QGIS plugin: ruff and the zip =="
"$PY" -m ruff check qgis_plugin scripts/build_qgis_plugin.py tests/qgis docs/qgis
dist="$(mktemp -d /tmp/qgis-dist.XXXXXX)"
"$PY" scripts/build_qgis_plugin.py -o "$dist"
rm -rf "$dist"

echo "== QGIS plugin: tests in QGIS (qgis_process offscreen, PyQGIS) =="
/usr/bin/python3 tests/qgis/qgis_integration.py --venv-python "$PY"
