#!/usr/bin/env bash
# Set up (if needed, with the test and benchmark tools) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test,bench
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
