#!/usr/bin/env bash
# The whole test suite: unit tests, integration tests (the real binary against the mock provider
# over loopback sockets), and the end-to-end suite driven by the official openai and anthropic
# Python SDKs. Installs what a fresh Debian machine is missing (cmake, python3-venv,
# redis-server, postgresql, chromium, the SDKs into target/sdk-venv).
#
#   scripts/test.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/deps.sh
ensure_build_deps
ensure_python_venv
ensure_redis   # tests/governance_redis.rs starts its own redis-server
ensure_postgres   # tests/fleet_postgres.rs starts its own Postgres (scripts/postgres.sh)
ensure_chromium   # tests/dashboard.rs loads the dashboard in headless Chromium

echo "==> cargo test" >&2
cargo test --locked --all-targets

echo "==> SDK end-to-end tests" >&2
SWITCHYARD_BIN=target/debug/switchyard tests/sdk/run.sh
