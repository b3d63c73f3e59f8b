#!/usr/bin/env bash
# Run the default test suite in (Python, MindSpore) cells: one venv per cell.
#
#   bash .ci/version_matrix.sh                            # the cells mindtf.compat.TESTED_CELLS lists
#   CELLS="3.10:2.7.2 3.11:2.9.0 3.12:2.10.0" bash .ci/version_matrix.sh
#   CELLS="3.12:2.8.0" TESTS="tests/test_gpt_hf.py tests/test_train.py" bash .ci/version_matrix.sh
#   bash .ci/version_matrix.sh --install-only              # build the venvs, run nothing
#
# A cell is PYTHON:MINDSPORE. PYTHON is a version ("3.10": python3.10 on PATH, else pyenv's),
# a name on PATH or a full path; MINDSPORE is an exact release on PyPI. Each cell gets its own
# venv, .venv-py<X.Y>-ms<version> (gitignored by `.venv-*/`), with requirements-test.txt in
# which the mindspore pin of requirements.txt is replaced by the cell's release (one resolve:
# every other pin, numpy<2 included, stays as tested), then mindtf itself (`pip install -e .
# --no-deps`). requirements-test.txt leaves out the PyTorch / transformers references, whose
# parity tests skip (PyPI's torch for 3.10 / 3.12 is a multi-GB CUDA build).
#
# The tests of a cell go to build/matrix-py<X.Y>-ms<version>.log; the script prints one line per
# cell (pytest's summary) and the same lines again at the end. README.md "Versions" copies them.
# TESTS (pytest arguments, default: the default run) runs a subset instead. Exit status: 0 when
# every cell passed. The old interface, PYTHONS="python3.10 python3.12", still works: each
# interpreter with requirements.txt's pinned MindSpore (.ci/python_matrix.sh calls this script).
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off MPLBACKEND=Agg PYTHONUNBUFFERED=1
[ -d ../shared/data ] && export MINDTF_DATA_MIRROR="$(cd ../shared/data && pwd)"
install_only=0
[ "${1:-}" = "--install-only" ] && install_only=1

pinned=$(sed -n 's/^mindspore==\([^ ]*\).*/\1/p' requirements.txt)
if [ -z "${CELLS:-}" ] && [ -n "${PYTHONS:-}" ]; then
  CELLS=""
  for py in $PYTHONS; do CELLS="$CELLS $py:$pinned"; done
fi
if [ -z "${CELLS:-}" ]; then  # the package's own table: one place says what is tested
  CELLS=$(PYTHONPATH=. python3 -c \
    'from mindtf.compat import TESTED_CELLS as t; print(" ".join(f"{p}:{m}" for m, p in t))')
fi

find_python() {  # "3.10" | "python3.10" | "/path/to/python" -> the interpreter's real path
  local want=$1 cand
  case "$want" in python[0-9]*) want=${want#python} ;; esac  # python3.12 -> 3.12
  case "$want" in
    */*) set -- "$want" ;;
    [0-9]*) set -- "$(command -v "python$want" || true)" \
                   $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$want".*/bin/python"$want" 2>/dev/null \
                     | sort -rV) ;;
    *) set -- "$(command -v "$want" || true)" ;;
  esac
  for cand in "$@"; do  # the first that runs (a pyenv shim may not, if that version is off)
    [ -n "$cand" ] && "$cand" -c 'import sys; print(sys.executable)' 2>/dev/null && return 0
  done
  echo "no Python for '$want' (install it, e.g. pyenv install $want, or give a full path)" >&2
  return 1
}

mkdir -p build/matrix
summary=()
status=0
for cell in $CELLS; do
  py=$(find_python "${cell%:*}") || { summary+=("$cell: no interpreter"); status=1; continue; }
  ms=${cell##*:}
  pyver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  name="py$pyver-ms$ms"
  venv=".venv-$name"
  reqs="build/matrix/$name"
  mkdir -p "$reqs"
  # requirements*.txt with this cell's MindSpore: `-r requirements.txt` resolves beside the copy
  sed "s/^mindspore==[^ ]*/mindspore==$ms/" requirements.txt > "$reqs/requirements.txt"
  cp requirements-test.txt "$reqs/requirements-test.txt"
  echo "::: $name: installing into $venv ($py)"
  [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
  if ! { "$venv/bin/pip" install -q -r "$reqs/requirements-test.txt" &&
         "$venv/bin/pip" install -q --no-deps -e . ; } > "$reqs/pip.log" 2>&1; then
    tail -n 5 "$reqs/pip.log"
    summary+=("$name: install failed (see $reqs/pip.log)"); status=1; continue
  fi
  got=$("$venv/bin/python" -c 'import mindspore, numpy, sys; print("python %d.%d.%d" %
        sys.version_info[:3], "mindspore", mindspore.__version__, "numpy", numpy.__version__)' \
        2>/dev/null | tail -n 1)
  echo "::: $name: $got"
  [ "$install_only" = 1 ] && { summary+=("$name: installed ($got)"); continue; }
  log="build/matrix-$name.log"
  set +e
  # shellcheck disable=SC2086  # TESTS is a list of pytest arguments
  # the cell under test is not "untested" while its own test run decides (mindtf.compat)
  MINDTF_MATRIX_CELL="$pyver:$ms" "$venv/bin/python" -m pytest -q -p no:cacheprovider ${TESTS:-} \
    > "$log" 2>&1
  rc=$?
  set -e
  [ "$rc" = 0 ] || status=1
  line="$name: exit $rc: $(tail -n 1 "$log")${TESTS:+ (subset)}"
  echo "::: $line"
  summary+=("$line")
done
echo "::: summary ($(date -u +%Y-%m-%d), $(nproc) cores${TESTS:+, subset: $TESTS})"
printf '%s\n' "${summary[@]}"
exit "$status"
