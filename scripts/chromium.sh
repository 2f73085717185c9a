#!/usr/bin/env bash
# Make sure Debian's chromium is there for the browser tests (tests/browser, Playwright through
# executable_path; never `playwright install`, which downloads a browser of its own). Installs it
# only when it is missing, we are root and apt-get exists (as on CI); otherwise does nothing,
# and the browser tests say how to get it. Quick when chromium is already on PATH.
set -euo pipefail
if [ -n "${GRIDHORN_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  exit 0
fi
echo "chromium: installing Debian's chromium for the browser tests (apt-get)" >&2
install=(apt-get install -y -q --no-install-recommends chromium)
export DEBIAN_FRONTEND=noninteractive
# a fresh machine may have no package lists yet: update only when the install fails
if ! "${install[@]}" >/dev/null 2>&1 \
    && ! { apt-get update -q >/dev/null && "${install[@]}" >/dev/null; }; then
  # on CI the browser tests must run; elsewhere they skip, saying how to get chromium
  echo "chromium: apt-get could not install chromium" >&2
  [ "${CI:-}" != true ] || exit 1
fi
