#!/usr/bin/env bash
# Set up (if needed: the bot alone, no test tools) and run the playground: the real bot and a
# sample county on the shipped Bot API emulator, in the browser, with no token and no network
# (SPEC §17). Options go to `gridhorn demo` (--port, --lang, --db FILE, --no-browser, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/gridhorn demo "$@"
