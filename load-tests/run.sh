#!/usr/bin/env bash
# Loopback comparison: the mock provider called directly, through a bare pingora passthrough
# (load-tests/baseline.rs), and through switchyard, for: non-streamed chat, streamed chat (time
# to first token and the whole stream), 1 MiB request bodies, and a fallback path (the route's
# first target answers 503 every time, so every request is tried there and then served by the
# second target; the baseline cannot fall back, so its figure is the plain request).
# Telemetry's cost: the same non-streamed load through a second gateway whose `[telemetry]
# otlp_endpoint` is a loopback OTLP sink that accepts every export and discards it (spans are
# built, queued, batched and posted), against the gateway without telemetry.
# Bounded: a fixed number of requests per case. Prints one JSON line per case and a summary.
#
#   load-tests/run.sh                    # release build, ~2 minutes
#   TELEMETRY_ONLY=1 load-tests/run.sh   # only the telemetry comparison
#   PROFILE=dev TELEMETRY_ONLY=1 REQUESTS=200 RESULTS_FILE=/dev/null load-tests/run.sh  # smoke
#   BEFORE_BIN=../old/target/release/switchyard TELEMETRY=0 load-tests/run.sh  # before/after
#
# Env: REQUESTS (default 3000; a tenth of that for 1 MiB bodies), CONCURRENCY_HIGH (default 32),
#      RESULTS_FILE (default load-tests/RESULTS.md, where a section with the command, the machine
#      and the table is appended; /dev/null to skip), TELEMETRY_ONLY (1: only the gateway with
#      and without telemetry, non-streamed), TELEMETRY (0: no telemetry gateway or cases),
#      BEFORE_BIN (an older build of the gateway, started with the same config and measured
#      right after each gateway case, so "before" and "now" share the machine's state; the
#      table gets a before/now section), WRITER_CORE (move the gateways' ledger writer threads
#      to that core)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. load-tests/lib.sh
# PROFILE=debug only to check the script quickly (its figures mean nothing).
PROFILE=${PROFILE:-release}
cargo build --locked --profile "$PROFILE" --bin switchyard --bin switchyard-loadgen --bin switchyard-baseline >&2
OUT=target/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
BIN=$OUT/switchyard
GEN=$OUT/switchyard-loadgen
REQUESTS=${REQUESTS:-3000}
HIGH=${CONCURRENCY_HIGH:-32}
RESULTS_FILE=${RESULTS_FILE:-load-tests/RESULTS.md}
MOCK_PORT=19100
FLAKY_PORT=19101
GW_PORT=19080
BASE_PORT=19081
OTEL_GW_PORT=19082
SINK_PORT=19102
TELEMETRY_ONLY=${TELEMETRY_ONLY:-0}
TELEMETRY=${TELEMETRY:-1}
BEFORE_BIN=${BEFORE_BIN:-}
BEFORE_PORT=19083
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT

{ printf '[server]\nlisten = "127.0.0.1:%s"\nthreads = 1\n' "$GW_PORT"
  fallback_config "$MOCK_PORT" "$FLAKY_PORT"
  printf '[ledger]\npath = "%s"\n' "$work/ledger.db"; } > "$work/gw.toml"

# The same gateway exporting traces to a sink that accepts and discards them.
sed -e "s/127.0.0.1:$GW_PORT/127.0.0.1:$OTEL_GW_PORT/" -e "s#$work/ledger.db#$work/ledger-otel.db#" \
  "$work/gw.toml" > "$work/gw-otel.toml"
printf '[telemetry]\notlp_endpoint = "http://127.0.0.1:%s"\n' "$SINK_PORT" >> "$work/gw-otel.toml"
# A loopback OTLP/HTTP sink: reads each export and answers 200 with an empty body.
# Counts the bytes it received in $work/sink.bytes (so the run shows spans were exported).
python3 - "$SINK_PORT" "$work/sink.bytes" <<'PY_SINK' >/dev/null 2>&1 &
import http.server, sys, threading
total, lock = [0], threading.Lock()
class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        n = len(self.rfile.read(int(self.headers.get("content-length", 0))))
        with lock:
            total[0] += n
            open(sys.argv[2], "w").write(str(total[0]))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
PY_SINK

# One core for the mock, one for the gateway (the load generator shares them).
taskset -c 0 $BIN mock --listen 127.0.0.1:$MOCK_PORT --tokens 20 >/dev/null 2>&1 &
taskset -c 0 $BIN mock --listen 127.0.0.1:$FLAKY_PORT --fault 503 >/dev/null 2>&1 &
SWITCHYARD_ACCESS_LOG=off taskset -c 1 $BIN serve --config "$work/gw.toml" >/dev/null 2>"$work/gw.err" &
gateways=($!)
ports=("$GW_PORT" "$MOCK_PORT" "$FLAKY_PORT" "$BASE_PORT")
if [ "$TELEMETRY" = 1 ]; then
  SWITCHYARD_ACCESS_LOG=off taskset -c 1 $BIN serve --config "$work/gw-otel.toml" >/dev/null 2>"$work/gw-otel.err" &
  ports+=("$OTEL_GW_PORT" "$SINK_PORT")
fi
if [ -n "$BEFORE_BIN" ]; then
  sed -e "s/127.0.0.1:$GW_PORT/127.0.0.1:$BEFORE_PORT/" -e "s#$work/ledger.db#$work/ledger-before.db#" \
    "$work/gw.toml" > "$work/gw-before.toml"
  SWITCHYARD_ACCESS_LOG=off taskset -c 1 "$BEFORE_BIN" serve --config "$work/gw-before.toml" >/dev/null 2>"$work/gw-before.err" &
  gateways+=($!)
  ports+=("$BEFORE_PORT")
fi
taskset -c 1 $OUT/switchyard-baseline 127.0.0.1:$BASE_PORT 127.0.0.1:$MOCK_PORT 1 >/dev/null 2>&1 &
wait_ports "${ports[@]}"
# WRITER_CORE: each gateway's ledger writer thread moves to that core (on a machine with a core
# to spare it does not share the proxy's).
if [ -n "${WRITER_CORE:-}" ]; then
  for pid in "${gateways[@]}"; do
    moved=0
    for t in /proc/"$pid"/task/*; do
      [ "$(cat "$t/comm")" = switchyard-ledg ] && taskset -pc "$WRITER_CORE" "${t##*/}" >/dev/null && moved=1
    done
    [ "$moved" = 1 ] || { echo "no ledger writer thread in process $pid" >&2; exit 1; }
  done
fi

small='{"model":"MODEL","messages":[{"role":"user","content":"hello"}]}'
stream='{"model":"MODEL","stream":true,"messages":[{"role":"user","content":"hello"}]}'
run() { # name url auth body|@file concurrency [requests]
  local out n=${6:-$REQUESTS} body=(--body "$4")
  [[ $4 == @* ]] && body=(--body-file "${4#@}")
  out=$($GEN --url "$2" --header "authorization: Bearer $3" "${body[@]}" --concurrency "$5" --requests "$n" --warmup $(( n / 15 )) --duration-secs 120)
  echo "{\"case\":\"$1\",\"result\":$out}"
}
write_large_bodies "$work"
direct="http://127.0.0.1:$MOCK_PORT/v1/chat/completions"
base="http://127.0.0.1:$BASE_PORT/v1/chat/completions"
gw="http://127.0.0.1:$GW_PORT/v1/chat/completions"
otel="http://127.0.0.1:$OTEL_GW_PORT/v1/chat/completions"
before="http://127.0.0.1:$BEFORE_PORT/v1/chat/completions"
gateway() { # name body|@file concurrency [requests]: the gateway, then the before build
  run "gateway $1" "$gw" sk-sy-load-test "$2" "$3" ${4:-}
  [ -z "$BEFORE_BIN" ] || run "before $1" "$before" sk-sy-load-test "$2" "$3" ${4:-}
}
{
# Telemetry's cost: the gateway without and with OTLP export, interleaved.
[ "$TELEMETRY" = 0 ] || for c in 1 "$HIGH"; do
  run "telemetry off non-stream c=$c" "$gw"   sk-sy-load-test "${small//MODEL/openai\/gpt-4o-mini}" "$c"
  run "telemetry on non-stream c=$c"  "$otel" sk-sy-load-test "${small//MODEL/openai\/gpt-4o-mini}" "$c"
done
[ "$TELEMETRY_ONLY" = 1 ] || for c in 1 "$HIGH"; do
  for kind in non-stream stream; do
    body=$small; [ $kind = stream ] && body=$stream
    run "direct $kind c=$c"   "$direct" sk-mock-load    "${body//MODEL/gpt-4o-mini}" "$c"
    run "baseline $kind c=$c" "$base"   sk-mock-load    "${body//MODEL/gpt-4o-mini}" "$c"
    gateway "$kind c=$c" "${body//MODEL/openai\/gpt-4o-mini}" "$c"
  done
  run "direct fallback c=$c"   "$direct" sk-mock-load    "${small//MODEL/gpt-4o-mini}" "$c"
  run "baseline fallback c=$c" "$base"   sk-mock-load    "${small//MODEL/gpt-4o-mini}" "$c"
  gateway "fallback c=$c" "${small//MODEL/fallback}" "$c"
done
large=$(( REQUESTS / 10 ))
[ "$TELEMETRY_ONLY" = 1 ] || for c in 1 8; do
  run "direct 1MiB body c=$c"   "$direct" sk-mock-load    "@$work/large-direct.json" "$c" "$large"
  run "baseline 1MiB body c=$c" "$base"   sk-mock-load    "@$work/large-direct.json" "$c" "$large"
  gateway "1MiB body c=$c" "@$work/large-gw.json" "$c" "$large"
done
} | tee "$work/results.jsonl"
sleep 1 # the last export interval
[ "$TELEMETRY" = 0 ] || echo "OTLP sink received $(cat "$work/sink.bytes" 2>/dev/null || echo 0) bytes of spans" >&2
[ "$TELEMETRY" = 0 ] || [ -s "$work/sink.bytes" ] || { echo "the telemetry gateway exported nothing" >&2; exit 1; }

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
befores = [k[len("before "):] for k in r if k.startswith("before ")]
if befores:
    rows += ["", f"Before ({os.environ.get('BEFORE_BIN')}) and now, each measured right after the other:", "",
             "| case | req/s baseline | req/s before | req/s now | before/baseline | now/baseline | now/before | total p50 before | total p50 now | added p50 before | added p50 now |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for k in befores:
        b, old, g = r[f"baseline {k}"], r[f"before {k}"], r[f"gateway {k}"]
        assert old["errors"] == 0 and list(old["statuses"]) == ["200"], (k, "before", old)
        rows.append(f"| {k} | {b['rps']:.0f} | {old['rps']:.0f} | {g['rps']:.0f} | {old['rps'] / b['rps']:.0%} | "
                    f"{g['rps'] / b['rps']:.0%} | {g['rps'] / old['rps']:.0%} | "
                    f"{old['total_us']['p50']:.0f} µs | {g['total_us']['p50']:.0f} µs | "
                    f"{old['total_us']['p50'] - b['total_us']['p50']:.0f} µs | {g['total_us']['p50'] - b['total_us']['p50']:.0f} µs |")
tele = [k[len("telemetry off "):] for k in r if k.startswith("telemetry off ")]
if tele:
    rows += ["", "Telemetry's cost (the same gateway; `on` exports every span to a loopback OTLP sink that discards it):", "",
             "| case | req/s off | req/s on | on/off | total p50 off | total p50 on | added p50 | total p99 off | total p99 on |",
             "|---|---|---|---|---|---|---|---|---|"]
    for k in tele:
        off, on = r[f"telemetry off {k}"], r[f"telemetry on {k}"]
        for name, x in (("off", off), ("on", on)):
            assert x["errors"] == 0 and list(x["statuses"]) == ["200"], (k, name, x)
        rows.append(f"| {k} | {off['rps']:.0f} | {on['rps']:.0f} | {on['rps'] / off['rps']:.0%} | "
                    f"{off['total_us']['p50']:.0f} µs | {on['total_us']['p50']:.0f} µs | "
                    f"{on['total_us']['p50'] - off['total_us']['p50']:.0f} µs | "
                    f"{off['total_us']['p99']:.0f} µs | {on['total_us']['p99']:.0f} µs |")
table = "\n".join(rows)
print("\n" + table)
if out_path and out_path != "/dev/null":
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) // 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"\n## load-tests/run.sh, {now} (written by the script)\n\n"
        f"Command: `REQUESTS={requests} CONCURRENCY_HIGH={high} TELEMETRY_ONLY={os.environ.get('TELEMETRY_ONLY', '0')} TELEMETRY={os.environ.get('TELEMETRY', '1')} BEFORE_BIN={os.environ.get('BEFORE_BIN', '')} WRITER_CORE={os.environ.get('WRITER_CORE', '')} load-tests/run.sh`. Machine: "
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
