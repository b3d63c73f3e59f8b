#!/usr/bin/env bash
# The default test suite on each Python with requirements.txt's MindSpore (the old interface of
# .ci/version_matrix.sh, which tests (Python, MindSpore) cells and explains the details):
#
#   bash .ci/python_matrix.sh                  # python3.10 and python3.12 (3.11 is the main venv)
#   PYTHONS="python3.12" bash .ci/python_matrix.sh
#   bash .ci/python_matrix.sh --install-only    # build the venvs, run nothing
set -euo pipefail
PYTHONS=${PYTHONS:-"python3.10 python3.12"} exec bash "$(dirname "$0")/version_matrix.sh" "$@"
