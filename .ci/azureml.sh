#!/usr/bin/env bash
# CI, Azure AutoML part: build the Azure AutoML venv with scripts/install-azureml.sh, then
# run tests/automl inside it. Nothing assumed installed but python3 (3.10 or 3.11) and a C
# compiler (pmdarima is built from source).
#
#   .ci/azureml.sh [VENV]        VENV defaults to .venv-azureml in the repo
#
# About 4 minutes for the venv and 1 minute for the tests on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${1:-.venv-azureml}"
start=$SECONDS

bash scripts/install-azureml.sh "$venv"
built=$SECONDS

# In this venv the runtime must be there: a module-level skip would hide a broken venv.
export WINDOWED_CLASSIFY_REQUIRE_AZUREML=1
status=0
"$venv/bin/python" -m pytest -q tests/automl || status=$?
echo "azureml CI: venv $((built - start)) s, tests $((SECONDS - built)) s," \
    "total $((SECONDS - start)) s"
exit "$status"
