#!/usr/bin/env bash
# Memory per 20 MiB speech-to-text upload: the gateway's resident memory while UPLOADS
# multipart uploads of SIZE_MIB each go through it at once (to /v1/audio/transcriptions,
# spooled to a temp file and streamed to the mock, which answers after a delay so every
# upload is in flight together). Bounded: a few seconds per round, ROUNDS rounds.
#
#   load-tests/upload_rss.sh
#
# Prints: RSS at idle (after two warm-up uploads), the highest RSS sampled while the uploads
# are in flight, the gateway's peak (VmHWM), and (peak - idle) / UPLOADS per upload.
# Env: UPLOADS (default 8), SIZE_MIB (default 20), ROUNDS (default 3), BIN (default: the
# release build, built first).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. load-tests/lib.sh
UPLOADS=${UPLOADS:-8}
SIZE_MIB=${SIZE_MIB:-20}
ROUNDS=${ROUNDS:-3}
if [ -z "${BIN:-}" ]; then
  cargo build --locked --release --bin switchyard >&2
  BIN=target/release/switchyard
fi
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
max_body_size = "64MiB"
[ledger]
path = "$work/ledger.db"
[[providers]]
name = "openai"
kind = "openai"
base_url = "http://127.0.0.1:$MOCK_PORT/v1"
api_keys = ["sk-mock-rss"]
[[gateway_keys]]
name = "rss"
key = "sk-sy-rss-test"
TOML
python3 - "$work/a.wav" "$SIZE_MIB" <<'PY'
import os, struct, sys
n = int(sys.argv[2]) * 1024 * 1024
head = (b"RIFF" + struct.pack("<I", 36 + n) + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16) + b"data" + struct.pack("<I", n))
with open(sys.argv[1], "wb") as f:
    f.write(head)
    f.write(os.urandom(n))
PY
$BIN mock --listen "127.0.0.1:$MOCK_PORT" >/dev/null 2>"$work/mock.err" & pids+=($!)
SWITCHYARD_LOG=warn $BIN serve --config "$work/gw.toml" >/dev/null 2>"$work/gw.err" & GW_PID=$!; pids+=($GW_PID)
wait_ports "$GW_PORT" "$MOCK_PORT"
kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$GW_PID/status"; }
upload() {  # $1: mock delay in ms; prints the status and the file bytes the mock got
  local h="$work/h.$BASHPID.$RANDOM"
  curl -sS -o /dev/null -w '%{http_code} ' -D "$h" \
    -H 'authorization: Bearer sk-sy-rss-test' -H "x-mock-ttft-ms: $1" -H 'expect:' \
    -F model=openai/whisper-1 -F "file=@$work/a.wav;type=audio/wav" \
    "http://127.0.0.1:$GW_PORT/v1/audio/transcriptions"
  tr -d '\r' < "$h" | awk -F': ' '$1 == "x-mock-file-bytes" {print $2}'
}
upload 0 >/dev/null; upload 0 >/dev/null   # warm-up
sleep 1
IDLE=$(kib VmRSS)
HELD=0
for round in $(seq "$ROUNDS"); do
  for _ in $(seq "$UPLOADS"); do upload 2500 > "$work/out.$round.$RANDOM" & done
  for _ in $(seq 25); do r=$(kib VmRSS); [ "$r" -gt "$HELD" ] && HELD=$r; sleep 0.1; done
  wait $(jobs -p | grep -v -e "^${pids[0]}\$" -e "^$GW_PID\$") 2>/dev/null || true
done
PEAK=$(kib VmHWM)
ok=$(cat "$work"/out.* | grep -c "^200 $(( SIZE_MIB * 1024 * 1024 + 44 ))\$" || true)
python3 - "$IDLE" "$HELD" "$PEAK" "$UPLOADS" "$SIZE_MIB" "$ok" "$(( UPLOADS * ROUNDS ))" <<'PY'
import sys
idle, held, peak, n, size, ok, total = map(int, sys.argv[1:])
mib = lambda k: f"{k / 1024:.1f} MiB"
print(f"{ok} of {total} uploads of {size} MiB answered 200 with the whole file at the provider")
print(f"RSS idle {mib(idle)}, highest sample with {n} uploads in flight {mib(held)}, peak (VmHWM) {mib(peak)}")
print(f"per upload: {(held - idle) / n / 1024:.2f} MiB sampled, {(peak - idle) / n / 1024:.2f} MiB at the peak "
      f"(a body held whole would be {size} MiB each)")
sys.exit(0 if ok == total else 1)
PY
