#!/usr/bin/env bash
# Run the default test suite on each Python that MindSpore 2.10 publishes wheels for.
#
#   bash .ci/python_matrix.sh                  # python3.10 and python3.12 (3.11 is the main venv)
#   PYTHONS="python3.12" bash .ci/python_matrix.sh
#   bash .ci/python_matrix.sh --install-only    # build the venvs, run nothing
#
# Each interpreter gets its own venv (.venv-<python>) with requirements-test.txt: everything the
# default run needs except the PyTorch / transformers references, whose tests skip (PyPI's torch
# for these Pythons is a multi-GB CUDA build). The last line per interpreter is pytest's summary;
# the table in README.md ("Versions") is copied from them.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHONS=${PYTHONS:-"python3.10 python3.12"}  # names on PATH, or full paths
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off MPLBACKEND=Agg
[ -d ../shared/data ] && export MINDTF_DATA_MIRROR="$(cd ../shared/data && pwd)"
mkdir -p build
for py in $PYTHONS; do
  name=$(basename "$py")
  venv=".venv-$name"
  if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
  fi
  "$venv/bin/pip" install -q -r requirements-test.txt -e .
  [ "${1:-}" = "--install-only" ] && continue
  log="build/matrix-$name.log"
  echo "::: $py: $("$venv/bin/python" --version), mindspore $("$venv/bin/python" -c 'import mindspore; print(mindspore.__version__)' 2>/dev/null)"
  set +e
  "$venv/bin/python" -m pytest -q -p no:cacheprovider > "$log" 2>&1
  rc=$?
  set -e
  echo "::: $py: exit $rc: $(tail -n 1 "$log")"
done
