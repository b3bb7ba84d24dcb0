#!/usr/bin/env bash
# Soak: mixed traffic through a release build for DURATION seconds, sampling the gateway's
# resident memory (VmRSS) and open file descriptors every INTERVAL seconds into a CSV.
# Bounded: the load stops after DURATION, the fd check after at most 120 s more.
#
#   load-tests/soak.sh                  # 10 minutes
#   DURATION=120 load-tests/soak.sh     # a short one
#
# The traffic (load-tests/loadgen.rs --mix): plain and streamed OpenAI chat, Anthropic streams,
# a fallback route whose first target answers 503 half the time (a second mock started with
# --fault p=0.5,503), streams cut mid-way (x-mock-fault: p=0.3,cut), connections reset before the
# answer (x-mock-fault: p=0.3,reset), and 429s with retry-after that rest the key.
#
# Verdict: "flat" when the last RSS sample is within 10% + 4 MiB of the sample after warm-up
# (WARMUP seconds, default 90), and the fd count, once the load has stopped and idle upstream
# connections have timed out (60 s), is back to the idle count before the load, give or take
# FD_SLACK (default 4). Exits 1 when not flat. The summary also gives the RSS slope after the
# warm-up (least squares), which shows a slow leak better than the two end points.
#
# The providers' read_timeout is 60 s here (READ_TIMEOUT), not the default 300 s: pingora keeps
# one timer entry per thread for every 10 ms slot that has a pending deadline, until that
# deadline passes, so its timer table grows for as long as the longest timeout and then stays
# level (about 12 MiB after 300 s at 260 req/s). With 300 s a 10-minute run spends half its
# time filling that table, which the verdict cannot tell from a leak; with 60 s it is full
# before the warm-up ends. load-tests/RESULTS.md has runs with both.
#
# Env: DURATION (default 600), INTERVAL (10), CONCURRENCY (16), WARMUP (90), FD_SLACK (4),
#      CSV (default: a new file in $TMPDIR, printed at the end), READ_TIMEOUT (default "60s";
#      "default" leaves the gateway's own 300 s).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. load-tests/lib.sh
DURATION=${DURATION:-600}
INTERVAL=${INTERVAL:-10}
CONCURRENCY=${CONCURRENCY:-16}
WARMUP=${WARMUP:-90}
READ_TIMEOUT=${READ_TIMEOUT:-60s}
FD_SLACK=${FD_SLACK:-4}
cargo build --locked --release --bin switchyard --bin switchyard-loadgen >&2
BIN=target/release/switchyard
GEN=target/release/switchyard-loadgen
work=$(mktemp -d)
CSV=${CSV:-$(mktemp -t switchyard-soak-XXXXXX.csv)}
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"   # the ledger grows to tens of MiB; the CSV is kept
}
trap cleanup EXIT
provider_extra=""
[ "$READ_TIMEOUT" != default ] && provider_extra="read_timeout = \"$READ_TIMEOUT\""
MOCK_PORT=$(free_port); FLAKY_PORT=$(free_port); GW_PORT=$(free_port)

cat > "$work/gw.toml" <<TOML
[server]
listen = "127.0.0.1:$GW_PORT"
threads = 2
upgrade_sock = "$work/upgrade.sock"
[ledger]
path = "$work/ledger.db"
[[providers]]
name = "openai"
kind = "openai"
base_url = "http://127.0.0.1:$MOCK_PORT/v1"
api_keys = ["sk-mock-soak"]
$provider_extra
[[providers]]
name = "anthropic"
kind = "anthropic"
base_url = "http://127.0.0.1:$MOCK_PORT/v1"
api_keys = ["sk-mock-soak"]
$provider_extra
[[providers]]
name = "flaky"
kind = "openai"
base_url = "http://127.0.0.1:$FLAKY_PORT/v1"
api_keys = ["sk-mock-soak"]
$provider_extra
[[providers]]
name = "cutter"
kind = "openai"
base_url = "http://127.0.0.1:$MOCK_PORT/v1"
api_keys = ["sk-mock-soak"]
$provider_extra
[[providers]]
name = "resetter"
kind = "openai"
base_url = "http://127.0.0.1:$MOCK_PORT/v1"
api_keys = ["sk-mock-soak"]
$provider_extra
[[providers]]
name = "limited"
kind = "openai"
base_url = "http://127.0.0.1:$MOCK_PORT/v1"
api_keys = ["sk-mock-soak-1", "sk-mock-soak-2"]
$provider_extra
[[gateway_keys]]
name = "soak"
key = "sk-sy-soak-test"
[[routes]]
name = "chat"
targets = ["openai/gpt-4o-mini"]
[[routes]]
name = "claude"
targets = ["anthropic/claude-sonnet-4-5"]
[[routes]]
name = "fallback"
targets = ["flaky/gpt-4o-mini", "openai/gpt-4o-mini"]
[[routes]]
name = "cut"
targets = ["cutter/gpt-4o-mini"]
[[routes]]
name = "resets"
targets = ["resetter/gpt-4o-mini"]
[[routes]]
name = "limited"
targets = ["limited/gpt-4o-mini"]
TOML

auth='authorization: Bearer sk-sy-soak-test'
msg='"messages":[{"role":"user","content":"Tell me about soak tests."}]'
cat > "$work/mix.json" <<JSON
[
 {"name":"plain","weight":8,"path":"/v1/chat/completions","headers":["$auth"],
  "body":{"model":"chat",$msg}},
 {"name":"stream","weight":6,"path":"/v1/chat/completions","headers":["$auth","x-mock-tokens: 40","x-mock-itl-ms: 1"],
  "body":{"model":"chat","stream":true,$msg}},
 {"name":"stream_usage","weight":1,"path":"/v1/chat/completions","headers":["$auth","x-mock-tokens: 40","x-mock-itl-ms: 1"],
  "body":{"model":"chat","stream":true,"stream_options":{"include_usage":true},$msg}},
 {"name":"anthropic_stream","weight":3,"path":"/v1/messages","headers":["x-api-key: sk-sy-soak-test","x-mock-tokens: 40","x-mock-itl-ms: 1"],
  "body":{"model":"claude","max_tokens":256,"stream":true,$msg}},
 {"name":"fallback","weight":3,"path":"/v1/chat/completions","headers":["$auth"],
  "body":{"model":"fallback",$msg}},
 {"name":"fallback_stream","weight":1,"path":"/v1/chat/completions","headers":["$auth"],
  "body":{"model":"fallback","stream":true,$msg}},
 {"name":"cut_stream","weight":1,"path":"/v1/chat/completions","headers":["$auth","x-mock-fault: p=0.3,cut:after=3"],
  "body":{"model":"cut","stream":true,$msg}},
 {"name":"reset","weight":1,"path":"/v1/chat/completions","headers":["$auth","x-mock-fault: p=0.3,reset"],
  "body":{"model":"resets",$msg}},
 {"name":"rate_limited","weight":1,"path":"/v1/chat/completions","headers":["$auth","x-mock-fault: p=0.2,429:retry-after=1"],
  "body":{"model":"limited",$msg}}
]
JSON

$BIN mock --listen "127.0.0.1:$MOCK_PORT" --tokens 20 >/dev/null 2>"$work/mock.err" & pids+=($!)
$BIN mock --listen "127.0.0.1:$FLAKY_PORT" --fault p=0.5,503 >/dev/null 2>"$work/flaky.err" & pids+=($!)
# Access log on (to /dev/null): its writer thread is part of what is soaked.
SWITCHYARD_LOG=warn $BIN serve --config "$work/gw.toml" >/dev/null 2>"$work/gw.err" & GW_PID=$!; pids+=($GW_PID)
wait_ports "$GW_PORT" "$MOCK_PORT" "$FLAKY_PORT"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$GW_PID/status"; }
# RSS split: anonymous (heap), file-backed (binary, mapped files), shared memory.
rss_parts() { awk '/^RssAnon:/ {a=$2} /^RssFile:/ {f=$2} /^RssShmem:/ {s=$2} END {print a "," f "," s}' "/proc/$GW_PID/status"; }
fds() { ls "/proc/$GW_PID/fd" | wc -l; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$GW_PID/status"; }
sleep 1
FD_IDLE=$(fds)
echo "elapsed_s,rss_kib,fds,threads,anon_kib,file_kib,shmem_kib" > "$CSV"
echo "soak: gateway pid $GW_PID, ${DURATION}s of mixed traffic, c=$CONCURRENCY, read_timeout $READ_TIMEOUT, idle fds $FD_IDLE, CSV $CSV" >&2

sampler() {
  local t=0
  while [ "$t" -le "$DURATION" ] && kill -0 "$GW_PID" 2>/dev/null; do
    echo "$t,$(rss_kib),$(fds),$(threads),$(rss_parts)" >> "$CSV"
    sleep "$INTERVAL"; t=$((t + INTERVAL))
  done
}
sampler & SAMPLER=$!; pids+=($SAMPLER)
$GEN --url "http://127.0.0.1:$GW_PORT/v1/chat/completions" --mix "$work/mix.json" \
  --concurrency "$CONCURRENCY" --requests 1000000000 --warmup 0 --duration-secs "$DURATION" \
  > "$work/loadgen.json"
wait "$SAMPLER" 2>/dev/null || true
alive=yes; kill -0 "$GW_PID" 2>/dev/null || alive=no

# After the load: idle upstream connections close after 60 s. Wait (at most 120 s) for the
# fd count to come back down to the idle count; the verdict allows FD_SLACK more.
FD_AFTER=-1; SETTLE=0
if [ $alive = yes ]; then
  FD_AFTER=$(fds)
  while [ "$FD_AFTER" -gt "$FD_IDLE" ] && [ "$SETTLE" -lt 120 ]; do
    sleep 5; SETTLE=$((SETTLE + 5)); FD_AFTER=$(fds)
  done
  RSS_IDLE_AFTER=$(rss_kib)
else
  RSS_IDLE_AFTER=-1
fi

python3 - "$CSV" "$work/loadgen.json" "$WARMUP" "$FD_IDLE" "$FD_AFTER" "$SETTLE" "$FD_SLACK" "$alive" "$RSS_IDLE_AFTER" <<'PY'
import csv, json, sys
path, gen, warmup, fd_idle, fd_after, settle, slack, alive, rss_after = sys.argv[1:]
warmup, fd_idle, fd_after, settle, slack, rss_after = map(int, (warmup, fd_idle, fd_after, settle, slack, rss_after))
rows = [{k: int(v) for k, v in r.items()} for r in csv.DictReader(open(path))]
g = json.load(open(gen))
mib = lambda kib: f"{kib / 1024:.1f} MiB"
first, last = rows[0], rows[-1]
warm = next((r for r in rows if r["elapsed_s"] >= warmup), rows[-1])
peak = max(rows, key=lambda r: r["rss_kib"])
print(f"samples: {len(rows)} every {rows[1]['elapsed_s'] - rows[0]['elapsed_s'] if len(rows) > 1 else 0} s; CSV: {path}")
print(f"requests: {g['requests']} ({g['rps']:.0f}/s), transport errors: {g['errors']} {g.get('error_kinds') or ''}, "
      f"statuses: {g['statuses']}, streams ending in an error event: {g.get('stream_error_events')}, "
      f"requests resent after the gateway closed a kept-alive connection: {g.get('stale_connection_retries')}")
for name, c in g.get("cases", {}).items():
    print(f"  {name:17} {c['statuses']} errors={c['errors']}")
print(f"RSS  first {mib(first['rss_kib'])} (t={first['elapsed_s']}s), after warm-up {mib(warm['rss_kib'])} "
      f"(t={warm['elapsed_s']}s), last {mib(last['rss_kib'])} (t={last['elapsed_s']}s), "
      f"max {mib(peak['rss_kib'])} (t={peak['elapsed_s']}s), idle after the load {mib(rss_after) if rss_after >= 0 else '-'}")
if "anon_kib" in last:
    print(f"     of which anonymous (heap): first {mib(first['anon_kib'])}, after warm-up {mib(warm['anon_kib'])}, "
          f"last {mib(last['anon_kib'])}; file-backed last {mib(last['file_kib'])}")
print(f"fds  idle before {fd_idle}, first {first['fds']}, last {last['fds']}, max {max(r['fds'] for r in rows)}, "
      f"idle after the load {fd_after} ({settle} s after it stopped)")
print(f"threads first {first['threads']}, last {last['threads']}, max {max(r['threads'] for r in rows)}")
after = [r for r in rows if r["elapsed_s"] >= warm["elapsed_s"]]
if len(after) >= 3:
    n = len(after); xs = [r["elapsed_s"] for r in after]; ys = [r["rss_kib"] for r in after]
    mx, my = sum(xs) / n, sum(ys) / n
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    print(f"RSS slope after warm-up: {slope * 60:.0f} KiB/min over {xs[-1] - xs[0]} s")
limit = warm["rss_kib"] * 1.10 + 4 * 1024
rss_flat = last["rss_kib"] <= limit
fd_flat = fd_after >= 0 and abs(fd_after - fd_idle) <= slack
ok = alive == "yes" and rss_flat and fd_flat
print(f"verdict: {'flat' if ok else 'NOT FLAT'} (gateway alive: {alive}; RSS last {mib(last['rss_kib'])} "
      f"{'<=' if rss_flat else '>'} {mib(limit)} = warm-up + 10% + 4 MiB; fds {fd_after} vs idle {fd_idle} ± {slack})")
sys.exit(0 if ok else 1)
PY
