#!/usr/bin/env bash
# Builds switchyard and runs the offline demo: the gateway on 127.0.0.1:8080 in front of the
# built-in mock provider (127.0.0.1:9100), with the embedded conf/demo.toml, and the admin port
# with the dashboard on 127.0.0.1:9091. Ctrl-C stops it.
#
#   scripts/demo.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/deps.sh
ensure_build_deps
cargo build --locked --release
cat >&2 <<'MSG'
==> switchyard demo on http://127.0.0.1:8080  (gateway key: sk-sy-demo-key)
    dashboard: http://127.0.0.1:9091/ui  (admin port on loopback, no admin key: opens directly)
    curl -s localhost:8080/v1/chat/completions -H 'authorization: Bearer sk-sy-demo-key' \
         -H 'content-type: application/json' \
         -d '{"model":"chat","messages":[{"role":"user","content":"hi"}]}'
MSG
exec target/release/switchyard serve "$@"
