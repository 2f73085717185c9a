#!/usr/bin/env bash
# Create .venv (once) and install Gridhorn with its test and benchmark tools. Needs only Python 3.11+ and pip.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "setup: Gridhorn needs Python 3.11 or newer" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  if ! "$PYTHON" -m venv .venv >/dev/null 2>&1; then
    # Debian's python3 without python3-venv: a venv without pip, served by the system's pip.
    rm -rf .venv
    "$PYTHON" -m venv --without-pip .venv
  fi
fi
if .venv/bin/python -m pip --version >/dev/null 2>&1; then
  PIP=(.venv/bin/python -m pip)
else
  PIP=("$PYTHON" -m pip --python .venv/bin/python)
fi
"${PIP[@]}" install --quiet --disable-pip-version-check -e '.[test,bench]'
