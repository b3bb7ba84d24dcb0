#!/usr/bin/env bash
# Memory with many streams open at once: the gateway's resident memory (VmRSS) and open file
# descriptors while STREAMS streaming requests are held open through it (default 1,000).
# The mock sends one event per second (x-mock-itl-ms: 1000) for longer than the hold, so every
# stream stays open until the load generator lets go. Bounded: about HOLD seconds plus start-up.
#
#   load-tests/streams_rss.sh
#
# Prints: RSS and fds at idle (after a short warm-up), while the streams are held (the highest
# of several samples), and after they are released; and the memory per open stream.
# Env: STREAMS (default 1000), HOLD (seconds, default 20), KIND (openai | anthropic).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. load-tests/lib.sh
STREAMS=${STREAMS:-1000}
HOLD=${HOLD:-20}
KIND=${KIND:-openai}
cargo build --locked --release --bin switchyard --bin switchyard-loadgen >&2
BIN=target/release/switchyard
GEN=target/release/switchyard-loadgen
# Each held stream is one client and one upstream socket in the gateway, one of each in the
# load generator and the mock.
ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
MOCK_PORT=$(free_port); GW_PORT=$(free_port)

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
api_keys = ["sk-mock-rss"]
[[providers]]
name = "anthropic"
kind = "anthropic"
base_url = "http://127.0.0.1:$MOCK_PORT/v1"
api_keys = ["sk-mock-rss"]
[[gateway_keys]]
name = "rss"
key = "sk-sy-rss-test"
TOML

$BIN mock --listen "127.0.0.1:$MOCK_PORT" >/dev/null 2>"$work/mock.err" & pids+=($!)
SWITCHYARD_LOG=warn $BIN serve --config "$work/gw.toml" >/dev/null 2>"$work/gw.err" & GW_PID=$!; pids+=($GW_PID)
wait_ports "$GW_PORT" "$MOCK_PORT"
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$GW_PID/status"; }
fds() { ls "/proc/$GW_PID/fd" | wc -l; }

msg='"messages":[{"role":"user","content":"Tell me a long story."}]'
if [ "$KIND" = anthropic ]; then
  url="http://127.0.0.1:$GW_PORT/v1/messages"; auth="x-api-key: sk-sy-rss-test"
  body="{\"model\":\"anthropic/claude-sonnet-4-5\",\"max_tokens\":4096,\"stream\":true,$msg}"
else
  url="http://127.0.0.1:$GW_PORT/v1/chat/completions"; auth="authorization: Bearer sk-sy-rss-test"
  body="{\"model\":\"openai/gpt-4o-mini\",\"stream\":true,$msg}"
fi
# Warm up: the same kind of stream, a few hundred times, so the idle figure is not a cold one.
$GEN --url "$url" --header "$auth" --header "x-mock-tokens: 20" --body "$body" \
  --concurrency 8 --requests 400 --warmup 0 --duration-secs 60 > "$work/warmup.json"
sleep 2
RSS_IDLE=$(rss_kib); FD_IDLE=$(fds)

tokens=$(( HOLD * 2 + 120 ))   # one per second: outlasts the hold
$GEN --url "$url" --header "$auth" --header "x-mock-itl-ms: 1000" --header "x-mock-tokens: $tokens" \
  --body "$body" --hold "$STREAMS" --hold-secs "$HOLD" --ready-file "$work/ready" \
  > "$work/hold.json" 2>"$work/hold.err" & GEN_PID=$!; pids+=($GEN_PID)
while [ ! -e "$work/ready" ] && kill -0 "$GEN_PID" 2>/dev/null; do sleep 0.2; done
RSS_HELD=0; FD_HELD=0
for _ in $(seq 5); do   # spread over the hold: the highest sample counts
  r=$(rss_kib); f=$(fds)
  [ "$r" -gt "$RSS_HELD" ] && RSS_HELD=$r
  [ "$f" -gt "$FD_HELD" ] && FD_HELD=$f
  sleep $(( HOLD / 6 > 0 ? HOLD / 6 : 1 ))
done
wait "$GEN_PID" || true
sleep 3
RSS_AFTER=$(rss_kib); FD_AFTER=$(fds)

python3 - "$work/hold.json" "$STREAMS" "$RSS_IDLE" "$RSS_HELD" "$RSS_AFTER" "$FD_IDLE" "$FD_HELD" "$FD_AFTER" "$KIND" <<'PY'
import json, sys
hold = json.load(open(sys.argv[1]))
n, rss_idle, rss_held, rss_after, fd_idle, fd_held, fd_after = map(int, sys.argv[2:9])
kind = sys.argv[9]
mib = lambda kib: f"{kib / 1024:.1f} MiB"
print(f"{kind} streams: {hold['open_at_once']} of {n} open at once "
      f"(all open after {hold['seconds_to_open_all']:.1f} s; still open at release: {hold['still_open_at_release']}; "
      f"ended early: {hold['ended_before_release'] or 0})")
print(f"RSS  idle {mib(rss_idle)}, with {hold['open_at_once']} streams {mib(rss_held)}, after release {mib(rss_after)}")
print(f"     {(rss_held - rss_idle) / max(hold['open_at_once'], 1):.1f} KiB per open stream")
print(f"fds  idle {fd_idle}, with the streams {fd_held}, after release {fd_after}")
sys.exit(0 if hold["open_at_once"] == n else 1)
PY
