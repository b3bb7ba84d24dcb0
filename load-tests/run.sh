#!/usr/bin/env bash
# Loopback latency comparison: the mock provider called directly vs. through switchyard.
# Bounded: a fixed number of requests per case. Prints one JSON line per case and a summary.
#
#   load-tests/run.sh            # release build, ~1 minute
#
# Env: REQUESTS (default 3000), CONCURRENCY_HIGH (default 32)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --locked --release --bin switchyard --bin switchyard-loadgen >&2
BIN=target/release/switchyard
GEN=target/release/switchyard-loadgen
REQUESTS=${REQUESTS:-3000}
HIGH=${CONCURRENCY_HIGH:-32}
MOCK_PORT=19100
GW_PORT=19080
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
TOML

# One core for the mock, one for the gateway (the load generator shares them).
taskset -c 0 $BIN mock --listen 127.0.0.1:$MOCK_PORT --tokens 20 >/dev/null 2>&1 &
SWITCHYARD_ACCESS_LOG=off taskset -c 1 $BIN serve --config "$work/gw.toml" >/dev/null 2>"$work/gw.err" &
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/$GW_PORT) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/$MOCK_PORT) 2>/dev/null && break
  sleep 0.05
done

small='{"model":"MODEL","messages":[{"role":"user","content":"hello"}]}'
stream='{"model":"MODEL","stream":true,"messages":[{"role":"user","content":"hello"}]}'
run() { # name url auth body concurrency
  local out
  out=$($GEN --url "$2" --header "authorization: Bearer $3" --body "$4" --concurrency "$5" --requests "$REQUESTS" --warmup 200 --duration-secs 60)
  echo "{\"case\":\"$1\",\"result\":$out}"
}
direct="http://127.0.0.1:$MOCK_PORT/v1/chat/completions"
gw="http://127.0.0.1:$GW_PORT/v1/chat/completions"
{
run "direct non-stream c=1"   "$direct" sk-mock-load    "${small//MODEL/gpt-4o-mini}" 1
run "gateway non-stream c=1"  "$gw"     sk-sy-load-test "${small//MODEL/openai\/gpt-4o-mini}" 1
run "direct stream c=1"       "$direct" sk-mock-load    "${stream//MODEL/gpt-4o-mini}" 1
run "gateway stream c=1"      "$gw"     sk-sy-load-test "${stream//MODEL/openai\/gpt-4o-mini}" 1
run "direct non-stream c=$HIGH"  "$direct" sk-mock-load    "${small//MODEL/gpt-4o-mini}" "$HIGH"
run "gateway non-stream c=$HIGH" "$gw"     sk-sy-load-test "${small//MODEL/openai\/gpt-4o-mini}" "$HIGH"
} | tee "$work/results.jsonl"

python3 - "$work/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
r = {x["case"]: x["result"] for x in rows}
def pair(kind):
    d, g = r[f"direct {kind}"], r[f"gateway {kind}"]
    return d, g
print("\n| case | req/s direct | req/s gateway | ttfb p50 direct | ttfb p50 gateway | added p50 | total p99 direct | total p99 gateway |")
print("|---|---|---|---|---|---|---|---|")
for kind in [k[len("direct "):] for k in r if k.startswith("direct ")]:
    d, g = pair(kind)
    print(f"| {kind} | {d['rps']:.0f} | {g['rps']:.0f} | {d['ttfb_us']['p50']:.0f} µs | {g['ttfb_us']['p50']:.0f} µs | "
          f"{g['ttfb_us']['p50'] - d['ttfb_us']['p50']:.0f} µs | {d['total_us']['p99']:.0f} µs | {g['total_us']['p99']:.0f} µs |")
    assert g["errors"] == 0 and d["errors"] == 0, (kind, d, g)
PY
