#!/usr/bin/env bash
# Build the virtual environment the benchmark's `pyspatialml` runner uses: pyspatialml
# 0.22.1 (it pins numpy<2, so it cannot share the main venv) on CPython 3.11.
#
#   scripts/install-pyspatialml.sh VENV      e.g. scripts/install-pyspatialml.sh /tmp/pysp-venv
#   PYTHON=/path/to/python3.11 scripts/install-pyspatialml.sh VENV
#
# then: python benchmarks/run_benchmarks.py --sizes 4000 --runs tool1 toolN pyspatialml \
#           --pyspatialml-python VENV/bin/python
#
# The versions below are the ones verified together (2026-11, Python 3.11.7):
# scikit-learn is pinned to the main venv's (1.9.1), because the runner trains the
# integer-label twin of the benchmark model here and checks that every tree equals the
# main venv's (the numpy-2 pickle cannot be loaded under numpy<2); if the main venv moves
# to another scikit-learn, set SKLEARN_VERSION to it. Re-running on an existing VENV is
# safe. About 30 s and 700 MB.
set -euo pipefail

if [[ $# -ne 1 || -z $1 ]]; then
    echo "usage: $0 VENV   (builds or updates the pyspatialml venv at VENV)" >&2
    exit 2
fi
venv="$1"
python="${PYTHON:-python3.11}"
sklearn="${SKLEARN_VERSION:-1.9.1}"

start=$SECONDS
finish() {
    local rc=$?
    if [[ $rc -eq 0 ]]; then
        echo "install-pyspatialml: venv $venv ready in $((SECONDS - start)) s"
    else
        echo "install-pyspatialml: FAILED (exit $rc) after $((SECONDS - start)) s" >&2
    fi
}
trap finish EXIT

"$python" - <<'EOF'
import sys
if sys.version_info[:2] != (3, 11):
    sys.exit(f"install-pyspatialml: needs CPython 3.11, {sys.executable} is "
             f"{sys.version.split()[0]} (set PYTHON=...)")
EOF

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_PROGRESS_BAR=off
echo "install-pyspatialml: venv $venv ($("$python" --version))"
"$python" -m venv "$venv"
py="$venv/bin/python"
"$py" -m pip install --quiet \
    pyspatialml==0.22.1 \
    numpy==1.26.4 \
    pandas==2.3.3 \
    "scikit-learn==$sklearn" \
    rasterio==1.4.4 \
    geopandas==0.14.4 \
    scipy==1.17.1 \
    shapely==2.2.0 \
    matplotlib==3.11.2 \
    joblib==1.6.0 \
    tqdm==4.70.1

"$py" - <<'EOF'
import warnings

warnings.simplefilter("ignore")
import numpy
import pandas
import rasterio
import sklearn
from pyspatialml import Raster  # noqa: F401

assert numpy.__version__.startswith("1."), numpy.__version__
print(f"    numpy {numpy.__version__}, pandas {pandas.__version__}, scikit-learn "
      f"{sklearn.__version__}, rasterio {rasterio.__version__} (GDAL {rasterio.__gdal_version__})")
EOF
