#!/usr/bin/env bash
# Build a virtual environment that can load Azure AutoML models (azureml-automl-runtime
# 1.62.0.post1) and run windowed_classify in it, on CPython 3.10 or 3.11.
#
#   scripts/install-azureml.sh VENV          e.g. scripts/install-azureml.sh .venv-azureml
#   PYTHON=python3.11 scripts/install-azureml.sh VENV
#
# pip's resolver cannot install the runtime as declared (it pins numpy<=1.23.5 and also
# needs onnxruntime~=1.17.3, which needs numpy>=1.24.2; pmdarima 1.8.5 has no cp311 wheel),
# so this installs it step by step: build tools and numpy first, pmdarima
# built against them, onnxruntime without its numpy pin, the runtime without dependencies,
# then the rest of its declared requirements with numpy, pandas, scikit-learn and joblib
# held at the runtime's pins. Then this project with --no-deps, pytest and hypothesis.
#
# Re-running it on an existing VENV is safe: pip skips what is already installed.
# 1.5 to 4 minutes (pmdarima is compiled) and 1.4 GB on a 2-core machine; a re-run ~15 s.
set -euo pipefail

if [[ $# -ne 1 || -z $1 ]]; then
    echo "usage: $0 VENV   (builds or updates the Azure AutoML venv at VENV)" >&2
    exit 2
fi
venv="$1"
python="${PYTHON:-python3}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

start=$SECONDS
finish() {
    local rc=$?
    if [[ $rc -eq 0 ]]; then
        echo "install-azureml: venv $venv ready in $((SECONDS - start)) s"
    else
        echo "install-azureml: FAILED (exit $rc) after $((SECONDS - start)) s" >&2
    fi
}
trap finish EXIT
step() { echo "install-azureml [$((SECONDS - start)) s]: $*"; }

# numpy 1.23.5 has no wheel past 3.11; built and tested on 3.10 and 3.11.
"$python" - <<'EOF'
import sys
if not ((3, 10) <= sys.version_info[:2] <= (3, 11)):
    sys.exit(f"install-azureml: needs CPython 3.10 or 3.11, {sys.executable} is "
             f"{sys.version.split()[0]} (set PYTHON=...)")
EOF

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_PROGRESS_BAR=off
step "venv $venv ($("$python" --version))"
"$python" -m venv "$venv"
py="$venv/bin/python"
pip=("$py" -m pip install --quiet)

# The runtime's pins, held in every step below (pip would otherwise move numpy on).
constraints="$venv/azureml-constraints.txt"
cat >"$constraints" <<'EOF'
numpy==1.23.5
pandas==1.5.3
scikit-learn~=1.5.1
joblib==1.2.0
scipy<1.11.0
psutil<5.9.4,>=5.2.2
statsmodels<0.14,>=0.13.0
pmdarima==1.8.5
onnxruntime==1.17.3
azureml-automl-runtime==1.62.0.post1
azureml-training-tabular==1.62.0.post1
rasterio<1.4
EOF

step "1/8 build tools and numpy"
"${pip[@]}" -c "$constraints" "setuptools<60" wheel "Cython<3" numpy==1.23.5

step "2/8 pmdarima (built here against numpy 1.23.5), pandas, scikit-learn, scipy, statsmodels"
"${pip[@]}" -c "$constraints" --no-build-isolation numpy==1.23.5 pmdarima==1.8.5 \
    "psutil<5.9.4,>=5.2.2" pandas==1.5.3 "scikit-learn~=1.5.1" joblib==1.2.0 \
    "scipy<1.11.0" "statsmodels<0.14,>=0.13.0"

step "3/8 onnxruntime 1.17.3 without its numpy>=1.24.2 pin, then its other needs"
"${pip[@]}" --no-deps onnxruntime==1.17.3
echo "    (pip now reports onnxruntime's numpy>=1.24.2 as a conflict, here and in step 6:" \
    "expected, the runtime works with numpy 1.23.5)"
"${pip[@]}" -c "$constraints" coloredlogs flatbuffers packaging protobuf sympy

step "4/8 azureml-automl-runtime and azureml-training-tabular without dependencies"
"${pip[@]}" --no-deps azureml-automl-runtime==1.62.0.post1 \
    azureml-training-tabular==1.62.0.post1

step "5/8 the rest of their declared requirements (from their METADATA)"
mapfile -t rest < <("$py" - <<'EOF'
# Requirements of the two packages installed with --no-deps, for this interpreter, minus
# the ones installed above with their pins (they stay pinned through the constraints).
from importlib.metadata import requires

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

done = {canonicalize_name(n) for n in (
    "azureml-automl-runtime", "azureml-training-tabular", "onnxruntime", "numpy", "pandas",
    "scikit-learn", "joblib", "scipy", "psutil", "statsmodels", "pmdarima",
)}
seen = set()
for dist in ("azureml-automl-runtime", "azureml-training-tabular"):
    for line in requires(dist) or []:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # another Python, or an optional extra
        name = canonicalize_name(req.name)
        if name in done or str(req) in seen:
            continue
        seen.add(str(req))
        print(req)
EOF
)
[[ ${#rest[@]} -gt 5 ]] || { echo "install-azureml: could not read the requirements" >&2; exit 1; }
printf '    %s\n' "${rest[@]}"
"${pip[@]}" -c "$constraints" "${rest[@]}" numpy==1.23.5 pandas==1.5.3 \
    "scikit-learn~=1.5.1" joblib==1.2.0

step "6/8 azureml-core (imported by the runtime, not declared)"
"${pip[@]}" -c "$constraints" "azureml-core~=1.61.0"

step "7/8 rasterio 1.3.x (1.4 needs numpy>=1.24), tqdm, pyyaml"
"${pip[@]}" -c "$constraints" "rasterio<1.4" tqdm pyyaml

step "8/8 windowed_classify from $repo (--no-deps), pytest, hypothesis"
"${pip[@]}" -c "$constraints" pytest hypothesis
"${pip[@]}" --no-deps -e "$repo"

step "checking the venv"
"$py" - <<'EOF'
import sys
import warnings

warnings.simplefilter("ignore")
import joblib
import numpy
import pandas
import rasterio
import sklearn

import azureml.automl.runtime  # noqa: F401
import windowed_classify  # noqa: F401

want = {
    "numpy": (numpy.__version__, "1.23.5"),
    "pandas": (pandas.__version__, "1.5.3"),
    "rasterio": (rasterio.__version__, "1.3."),
    "scikit-learn": (sklearn.__version__, "1.5."),
    "joblib": (joblib.__version__, "1.2."),
}
bad = [f"{k} {have} (want {w}*)" for k, (have, w) in want.items() if not have.startswith(w)]
if bad:
    sys.exit("install-azureml: wrong versions in the venv: " + ", ".join(bad))
print("    " + ", ".join(f"{k} {have}" for k, (have, _) in want.items()))
EOF
