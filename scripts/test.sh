#!/usr/bin/env bash
# Set up (if needed, with the test and benchmark tools), check the code (ruff, mypy) and run the
# whole test suite. With arguments (e.g. a test file) only pytest runs, with those arguments.
# Installs Debian's chromium for the browser tests when it is missing and we may
# (scripts/chromium.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test,bench
bash scripts/chromium.sh
if [ $# -eq 0 ]; then
  bash scripts/lint.sh
fi
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
