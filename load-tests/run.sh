#!/usr/bin/env bash
# Loopback comparison: the mock provider called directly, through a bare pingora passthrough
# (load-tests/baseline.rs), and through switchyard, for: non-streamed chat, streamed chat (time
# to first token and the whole stream), 1 MiB request bodies, and a fallback path (the route's
# first target answers 503 every time, so every request is tried there and then served by the
# second target; the baseline cannot fall back, so its figure is the plain request).
# Bounded: a fixed number of requests per case. Prints one JSON line per case and a summary.
#
#   load-tests/run.sh            # release build, ~2 minutes
#
# Env: REQUESTS (default 3000; a tenth of that for 1 MiB bodies), CONCURRENCY_HIGH (default 32),
#      RESULTS_FILE (default load-tests/RESULTS.md, where a section with the command, the machine
#      and the table is appended; /dev/null to skip)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. load-tests/lib.sh
cargo build --locked --release --bin switchyard --bin switchyard-loadgen --bin switchyard-baseline >&2
BIN=target/release/switchyard
GEN=target/release/switchyard-loadgen
REQUESTS=${REQUESTS:-3000}
HIGH=${CONCURRENCY_HIGH:-32}
RESULTS_FILE=${RESULTS_FILE:-load-tests/RESULTS.md}
MOCK_PORT=19100
FLAKY_PORT=19101
GW_PORT=19080
BASE_PORT=19081
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
[[providers]]
name = "flaky"
kind = "openai"
base_url = "http://127.0.0.1:$FLAKY_PORT/v1"
api_keys = ["sk-mock-load"]
[[routes]]
name = "fallback"
targets = ["flaky/gpt-4o-mini", "openai/gpt-4o-mini"]
[resilience]
breaker_failures = 1000000   # keep trying the failing target: measure the failover itself
[[gateway_keys]]
name = "load"
key = "sk-sy-load-test"
[ledger]
path = "$work/ledger.db"
TOML

# One core for the mock, one for the gateway (the load generator shares them).
taskset -c 0 $BIN mock --listen 127.0.0.1:$MOCK_PORT --tokens 20 >/dev/null 2>&1 &
taskset -c 0 $BIN mock --listen 127.0.0.1:$FLAKY_PORT --fault 503 >/dev/null 2>&1 &
SWITCHYARD_ACCESS_LOG=off taskset -c 1 $BIN serve --config "$work/gw.toml" >/dev/null 2>"$work/gw.err" &
taskset -c 1 target/release/switchyard-baseline 127.0.0.1:$BASE_PORT 127.0.0.1:$MOCK_PORT 1 >/dev/null 2>&1 &
wait_ports "$GW_PORT" "$MOCK_PORT" "$FLAKY_PORT" "$BASE_PORT"

small='{"model":"MODEL","messages":[{"role":"user","content":"hello"}]}'
stream='{"model":"MODEL","stream":true,"messages":[{"role":"user","content":"hello"}]}'
run() { # name url auth body|@file concurrency [requests]
  local out n=${6:-$REQUESTS} body=(--body "$4")
  [[ $4 == @* ]] && body=(--body-file "${4#@}")
  out=$($GEN --url "$2" --header "authorization: Bearer $3" "${body[@]}" --concurrency "$5" --requests "$n" --warmup $(( n / 15 )) --duration-secs 120)
  echo "{\"case\":\"$1\",\"result\":$out}"
}
# A 1 MiB request: a short message and 1 MiB of text in a field of its own (a 1 MiB prompt does
# not fit gpt-4o-mini's context window, and routing refuses it since issue #14).
python3 - "$work" <<'PY2'
import json, sys
text = ("The quick brown fox jumps over the lazy dog. " * 23302)[: 1 << 20]
for name, model in (("large-direct.json", "gpt-4o-mini"), ("large-gw.json", "openai/gpt-4o-mini")):
    with open(f"{sys.argv[1]}/{name}", "w") as f:
        json.dump({"model": model, "messages": [{"role": "user", "content": "hi"}], "pad": text}, f)
PY2
direct="http://127.0.0.1:$MOCK_PORT/v1/chat/completions"
base="http://127.0.0.1:$BASE_PORT/v1/chat/completions"
gw="http://127.0.0.1:$GW_PORT/v1/chat/completions"
{
for c in 1 "$HIGH"; do
  for kind in non-stream stream; do
    body=$small; [ $kind = stream ] && body=$stream
    run "direct $kind c=$c"   "$direct" sk-mock-load    "${body//MODEL/gpt-4o-mini}" "$c"
    run "baseline $kind c=$c" "$base"   sk-mock-load    "${body//MODEL/gpt-4o-mini}" "$c"
    run "gateway $kind c=$c"  "$gw"     sk-sy-load-test "${body//MODEL/openai\/gpt-4o-mini}" "$c"
  done
  run "direct fallback c=$c"   "$direct" sk-mock-load    "${small//MODEL/gpt-4o-mini}" "$c"
  run "baseline fallback c=$c" "$base"   sk-mock-load    "${small//MODEL/gpt-4o-mini}" "$c"
  run "gateway fallback c=$c"  "$gw"     sk-sy-load-test "${small//MODEL/fallback}" "$c"
done
large=$(( REQUESTS / 10 ))
for c in 1 8; do
  run "direct 1MiB body c=$c"   "$direct" sk-mock-load    "@$work/large-direct.json" "$c" "$large"
  run "baseline 1MiB body c=$c" "$base"   sk-mock-load    "@$work/large-direct.json" "$c" "$large"
  run "gateway 1MiB body c=$c"  "$gw"     sk-sy-load-test "@$work/large-gw.json"     "$c" "$large"
done
} | tee "$work/results.jsonl"

python3 - "$work/results.jsonl" "$RESULTS_FILE" "$REQUESTS" "$HIGH" <<'PY'
import datetime, json, os, platform, sys
results, out_path, requests, high = sys.argv[1:5]
r = {}
for line in open(results):
    x = json.loads(line)
    r[x["case"]] = x["result"]
kinds = [k[len("direct "):] for k in r if k.startswith("direct ")]
rows = ["| case | req/s direct | req/s baseline | req/s gateway | gateway/baseline | ttfb p50 baseline | ttfb p50 gateway | added p50 vs baseline | total p50 baseline | total p50 gateway | total p99 baseline | total p99 gateway |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|"]
for k in kinds:
    d, b, g = r[f"direct {k}"], r[f"baseline {k}"], r[f"gateway {k}"]
    for name, x in (("direct", d), ("baseline", b), ("gateway", g)):
        assert x["errors"] == 0 and list(x["statuses"]) == ["200"], (k, name, x)
    rows.append(f"| {k} | {d['rps']:.0f} | {b['rps']:.0f} | {g['rps']:.0f} | {g['rps'] / b['rps']:.0%} | "
                f"{b['ttfb_us']['p50']:.0f} µs | {g['ttfb_us']['p50']:.0f} µs | {g['ttfb_us']['p50'] - b['ttfb_us']['p50']:.0f} µs | "
                f"{b['total_us']['p50']:.0f} µs | {g['total_us']['p50']:.0f} µs | "
                f"{b['total_us']['p99']:.0f} µs | {g['total_us']['p99']:.0f} µs |")
table = "\n".join(rows)
print("\n" + table)
if out_path and out_path != "/dev/null":
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) // 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"\n## load-tests/run.sh, {now} (written by the script)\n\n"
        f"Command: `REQUESTS={requests} CONCURRENCY_HIGH={high} load-tests/run.sh`. Machine: "
        f"{os.cpu_count()} CPUs ({cpu}), {mem} MiB, Linux {platform.release()}; load average "
        f"before the table was written {load}. The mock on core 0; the gateway and the bare "
        "pingora baseline, one worker thread each, on core 1. fallback: the gateway's route tries "
        "a target that always answers 503, then the working one; direct and baseline send the "
        "plain request. total: the whole response (for a stream, its last byte).\n\n"
        f"{table}\n"
    )
    with open(out_path, "a") as f:
        f.write(section)
    print(f"\nappended to {out_path}")
PY
