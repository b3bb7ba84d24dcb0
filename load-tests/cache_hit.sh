#!/usr/bin/env bash
# Latency of a cache hit through switchyard, against the same request answered by the mock
# provider through the gateway (a miss path: caching off) and by the mock directly.
# Bounded: REQUESTS per case (default 3000). Loopback only; release build.
#
#   load-tests/cache_hit.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. load-tests/lib.sh
cargo build --locked --release --bin switchyard --bin switchyard-loadgen >&2
BIN=target/release/switchyard
GEN=target/release/switchyard-loadgen
REQUESTS=${REQUESTS:-3000}
MOCK_PORT=19300
GW_PORT=19380
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
cat > "$work/gw.toml" <<TOML
[server]
listen = "127.0.0.1:$GW_PORT"
threads = 1
[[providers]]
name = "openai"
kind = "openai"
base_url = "http://127.0.0.1:$MOCK_PORT/v1"
api_keys = ["sk-mock-load"]
[[gateway_keys]]
name = "load"
key = "sk-sy-load-test"
[[routes]]
name = "cached"
targets = ["openai/gpt-4o-mini"]
cache = { ttl = "1h" }
[[routes]]
name = "uncached"
targets = ["openai/gpt-4o-mini"]
[ledger]
path = "$work/ledger.db"
TOML
taskset -c 0 $BIN mock --listen 127.0.0.1:$MOCK_PORT --tokens 20 >/dev/null 2>&1 &
SWITCHYARD_ACCESS_LOG=off taskset -c 1 $BIN serve --config "$work/gw.toml" >/dev/null 2>"$work/gw.err" &
wait_ports "$GW_PORT" "$MOCK_PORT"
body() { echo "{\"model\":\"$1\",\"stream\":$2,\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}"; }
run() { # name url model stream concurrency
  local out
  out=$($GEN --url "$2" --header "authorization: Bearer sk-sy-load-test" --body "$(body "$3" "$4")" \
    --concurrency "$5" --requests "$REQUESTS" --warmup 200 --duration-secs 60)
  echo "{\"case\":\"$1\",\"result\":$out}"
}
gw="http://127.0.0.1:$GW_PORT/v1/chat/completions"
direct="http://127.0.0.1:$MOCK_PORT/v1/chat/completions"
for c in 1 32; do
  for s in false true; do
    run "direct stream=$s c=$c" "$direct" gpt-4o-mini "$s" "$c"
    run "gateway miss-path stream=$s c=$c" "$gw" uncached "$s" "$c"
    run "gateway cache hit stream=$s c=$c" "$gw" cached "$s" "$c"
  done
done
