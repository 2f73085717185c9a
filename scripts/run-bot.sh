#!/usr/bin/env bash
# Set up (if needed: the bot alone, no test tools) and run the bot. Needs GRIDHORN_BOT_TOKEN (environment or .env).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/gridhorn run "$@"
