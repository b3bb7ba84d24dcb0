#!/usr/bin/env bash
# Runs Debian's headless Chromium with the flags the dashboard test needs (no sandbox as root,
# no GPU, no first-run or network side trips), installing the `chromium` package if missing.
# Extra arguments are passed through, e.g.:
#
#   scripts/chromium.sh --dump-dom http://127.0.0.1:9091/ui
#   scripts/chromium.sh --screenshot=/tmp/ui.png --window-size=1280,1600 http://127.0.0.1:9091/ui
#   scripts/chromium.sh --install-only      # just make sure it is there
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/deps.sh
ensure_chromium >&2
if [ "${1:-}" = "--install-only" ]; then exit 0; fi
profile=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-chromium.XXXXXX")
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
    --no-default-browser-check --disable-extensions --disable-background-networking \
    --disable-component-update --disable-sync --hide-scrollbars --mute-audio \
    --user-data-dir="$profile" "$@"
