#!/usr/bin/env bash
# ruff (lint and import order) and mypy (strict on storage/, bot/services/ and playground/), as CI runs them;
# settings in pyproject.toml. Needs the test extra (bash scripts/setup.sh test).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check bot handlers storage emulator playground locales tests bench
.venv/bin/mypy
