#!/usr/bin/env bash
# Run the switchyard SDK end-to-end suite (official openai / anthropic Python SDKs against
# `switchyard serve` + `switchyard mock` on loopback).
#
#   tests/sdk/run.sh [pytest args...]          e.g. tests/sdk/run.sh -k anthropic -x
#
# Env:
#   SWITCHYARD_BIN        binary under test (default target/debug/switchyard)
#   SWITCHYARD_SDK_VENV   virtualenv to use/create (default target/sdk-venv)
#   PYTHON                interpreter used to create the venv (default python3)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo_root"

req="tests/sdk/requirements.txt"
venv="${SWITCHYARD_SDK_VENV:-target/sdk-venv}"
export SWITCHYARD_BIN="${SWITCHYARD_BIN:-target/debug/switchyard}"

if [[ ! -x "$SWITCHYARD_BIN" ]]; then
    echo "tests/sdk/run.sh: switchyard binary not found or not executable: $SWITCHYARD_BIN" >&2
    echo "  build it first (cargo build) or set SWITCHYARD_BIN=/path/to/switchyard" >&2
    exit 2
fi

if [[ ! -x "$venv/bin/python" ]]; then
    echo "tests/sdk/run.sh: creating virtualenv $venv" >&2
    "${PYTHON:-python3}" -m venv "$venv"
fi
py="$venv/bin/python"

# Reinstall only when requirements.txt (or the interpreter) changed since the last install.
stamp="$venv/.switchyard-sdk-requirements.sha256"
want="$( { sha256sum "$req"; "$py" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    echo "tests/sdk/run.sh: installing $req into $venv" >&2
    "$py" -m pip install --quiet --disable-pip-version-check -r "$req"
    echo "$want" > "$stamp"
fi

export PYTHONDONTWRITEBYTECODE=1
exec "$py" -m pytest -q tests/sdk "$@"
