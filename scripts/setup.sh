#!/usr/bin/env bash
# Create .venv (once) and install Gridhorn into it, with the extras named as the first argument
# (e.g. `test,bench`; none: the bot alone). Needs only Python 3.11+ and pip. pip runs only when
# needed (first use, pyproject.toml changed, an extra not installed yet), so that a restart of
# the bot needs no network: .venv/.gridhorn-installed holds the hash of pyproject.toml and the
# extras of the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
WANTED=${1:-}
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

STAMP=.venv/.gridhorn-installed
project_hash=$("$PYTHON" -c \
  'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())')
installed=""  # extras installed with this pyproject.toml
if [ -f "$STAMP" ] && [ "$(sed -n 1p "$STAMP")" = "$project_hash" ]; then
  installed=$(sed -n 2p "$STAMP")
  up_to_date=yes
else
  up_to_date=no
fi
extras=$installed
for extra in ${WANTED//,/ }; do
  case ",$extras," in
    *",$extra,"*) ;;
    *) extras=${extras:+$extras,}$extra; up_to_date=no ;;
  esac
done
if [ "$up_to_date" = yes ]; then
  exit 0
fi
if .venv/bin/python -m pip --version >/dev/null 2>&1; then
  PIP=(.venv/bin/python -m pip)
else
  PIP=("$PYTHON" -m pip --python .venv/bin/python)
fi
"${PIP[@]}" install --quiet --disable-pip-version-check -e ".${extras:+[$extras]}"
printf '%s\n%s\n' "$project_hash" "$extras" > "$STAMP"
