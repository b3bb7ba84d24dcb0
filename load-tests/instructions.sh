#!/usr/bin/env bash
# Instructions per request under callgrind: switchyard and the bare pingora baseline
# (load-tests/baseline.rs), same mock upstream, same requests, one worker thread each. Unlike
# wall-clock figures these do not depend on what else the machine runs, so they compare runs
# on a busy machine and guard against regressions.
#
#   load-tests/instructions.sh          # release build, then ~5 minutes under valgrind
#
# Cases: non-streamed chat; streamed chat (20 content events); a cache hit (switchyard answers
# from its cache; the baseline's figure is its proxied non-streamed request, since it has no
# cache); a translated stream (an OpenAI client to an Anthropic target; the baseline passes the
# same OpenAI stream through untranslated); fallback (the route's first target answers 503, the
# second serves; the baseline's figure is its plain request, it cannot fall back); a 1 MiB
# request body (a tenth of REQUESTS). Each: WARMUP requests, counters zeroed, REQUESTS
# requests at c=1, counters dumped; the whole process's instructions (proxy thread, ledger
# writer, everything) over REQUESTS.
#
# The gateway runs with the other features configured but idle on the measured route: an
# experiment on another route, rate and spend limits on another key, no kept bodies.
#
#   BEFORE_BIN=../old/target/release/switchyard load-tests/instructions.sh   # before/after
#
# BEFORE_BIN: an older build of the gateway measured the same way, with the same config less
# the idle features (an older build may not know them); its figures get a column of their own.
#
# Env: REQUESTS (default 2000), WARMUP (default 200), PROFILE (release, the default; debug to
# check the script quickly, its figures mean nothing),
# RESULTS_FILE (default load-tests/RESULTS.md; /dev/null to skip), REFERENCE (a file of
# `<case> <instructions>` lines: exit 1 when a case is more than 10 % above its reference;
# load-tests/instructions.ref holds the release reference), DUMPS_DIR (keep the callgrind dumps there,
# one per case in the order above, for callgrind_annotate), BUILD=0 (measure the binaries as
# built, without cargo build).
# CASES (default all): the cases to measure, space-separated.
# Output ends with one line per case: `<case> <switchyard> <baseline> <ratio>`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. load-tests/lib.sh
. scripts/deps.sh
ensure_valgrind >&2
PROFILE=${PROFILE:-release}
case ${BUILD:-1}:$PROFILE in
  0:*) ;;  # BUILD=0: measure the binaries already built
  *:release) cargo build --locked --release --bin switchyard --bin switchyard-loadgen --bin switchyard-baseline >&2 ;;
  *:debug) cargo build --locked --bin switchyard --bin switchyard-loadgen --bin switchyard-baseline >&2 ;;
  *) echo "PROFILE must be release or debug" >&2; exit 2 ;;
esac
# What the binaries were built from (the table says so).
REV=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src || echo +changes)
BIN=target/$PROFILE/switchyard
GEN=target/$PROFILE/switchyard-loadgen
REQUESTS=${REQUESTS:-2000}
WARMUP=${WARMUP:-200}
RESULTS_FILE=${RESULTS_FILE:-load-tests/RESULTS.md}
REFERENCE=${REFERENCE:-}
BEFORE_BIN=${BEFORE_BIN:-}
read -r -a cases <<< "${CASES:-chat stream cache-hit translated-stream fallback 1MiB}"
MOCK_PORT=$(free_port)
FLAKY_PORT=$(free_port)
GW_PORT=$(free_port)
BEFORE_PORT=$(free_port)
BASE_PORT=$(free_port)
work=$(mktemp -d)
# SIGKILL: the dumps are taken; a pingora process on SIGTERM would linger through its grace period.
trap '{ kill -9 $(jobs -p); wait; } 2>/dev/null; rm -rf "$work"' EXIT

# The measured routes (also what an older build gets); then the idle features.
{ fallback_config "$MOCK_PORT" "$FLAKY_PORT"
  cat <<TOML
[[providers]]
name = "anthropic"
kind = "anthropic"
base_url = "http://127.0.0.1:$MOCK_PORT/v1"
api_keys = ["sk-mock-load"]
[[routes]]
name = "claude"
targets = ["anthropic/claude-haiku-4-5"]
TOML
} > "$work/base.toml"
{ printf '[server]\nlisten = "127.0.0.1:%s"\nthreads = 1\n' "$BEFORE_PORT"
  cat "$work/base.toml"
  printf '[ledger]\npath = "%s"\n' "$work/ledger-before.db"; } > "$work/before.toml"
{ printf '[server]\nlisten = "127.0.0.1:%s"\nthreads = 1\n' "$GW_PORT"
  cat "$work/base.toml"; } > "$work/gw.toml"
cat >> "$work/gw.toml" <<TOML
[[routes]]
name = "experimented"
targets = ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"]
[[experiments]]
name = "idle"
route = "experimented"
variants = [
  { name = "a", target = "openai/gpt-4o-mini", weight = 1 },
  { name = "b", target = "anthropic/claude-haiku-4-5", weight = 1 },
]
[[gateway_keys]]
name = "limited"
key = "sk-sy-limited-key"
rpm = 60
budget = { usd = "5.00", period = "day" }
[ledger]
path = "$work/ledger.db"
TOML

$BIN mock --listen 127.0.0.1:$MOCK_PORT --tokens 20 >/dev/null 2>&1 &
$BIN mock --listen 127.0.0.1:$FLAKY_PORT --fault 503 >/dev/null 2>&1 &
wait_ports "$MOCK_PORT" "$FLAKY_PORT"
# --vgdb=yes lets callgrind_control zero and dump the counters of the running process.
SWITCHYARD_ACCESS_LOG=off valgrind --tool=callgrind --vgdb=yes --compress-strings=no --compress-pos=no \
  --callgrind-out-file="$work/sy.out" $BIN serve --config "$work/gw.toml" \
  >/dev/null 2>"$work/sy.err" &
SY_PID=$!
valgrind --tool=callgrind --vgdb=yes --compress-strings=no --compress-pos=no --callgrind-out-file="$work/base.out" \
  target/$PROFILE/switchyard-baseline 127.0.0.1:$BASE_PORT 127.0.0.1:$MOCK_PORT 1 \
  >/dev/null 2>"$work/base.err" &
BASE_PID=$!
ports=("$GW_PORT" "$BASE_PORT")
if [ -n "$BEFORE_BIN" ]; then
  SWITCHYARD_ACCESS_LOG=off valgrind --tool=callgrind --vgdb=yes --compress-strings=no --compress-pos=no \
    --callgrind-out-file="$work/before.out" "$BEFORE_BIN" serve --config "$work/before.toml" \
    >/dev/null 2>"$work/before.err" &
  BEFORE_PID=$!
  ports+=("$BEFORE_PORT")
fi
wait_ports "${ports[@]}"
write_large_bodies "$work"

small='{"model":"MODEL","messages":[{"role":"user","content":"hello"}]}'
stream='{"model":"MODEL","stream":true,"messages":[{"role":"user","content":"hello"}]}'

# measure NAME PID URL KEY BODY HEADER DUMP [N]: warm-up, zero, measured run of N requests
# (default REQUESTS), dump; prints instructions per request (BODY may be @file; HEADER may be
# empty; DUMP is the process's callgrind output file).
measure() {
  local name=$1 pid=$2 url=$3 key=$4 body=(--body "$5") extra=() out total n=${8:-$REQUESTS}
  [[ $5 == @* ]] && body=(--body-file "${5#@}")
  [ -n "$6" ] && extra=(--header "$6")
  $GEN --url "$url" --header "authorization: Bearer $key" "${extra[@]}" "${body[@]}" \
    --concurrency 1 --requests "$(( WARMUP * n / REQUESTS ))" --duration-secs 600 >/dev/null
  local dumps try
  # A run whose requests fail is tried once more (stderr shown), then the script fails.
  for try in 1 2; do
    callgrind_control -z "$pid" >/dev/null 2>&1 || { echo "$name: callgrind_control -z failed" >&2; exit 1; }
    dumps=$(find "$work" -name "$7.*" | wc -l)
    out=$($GEN --url "$url" --header "authorization: Bearer $key" "${extra[@]}" "${body[@]}" \
      --concurrency 1 --requests "$n" --duration-secs 600)
    python3 -c 'import json,sys; x=json.loads(sys.argv[1]); assert x["errors"]==0 and list(x["statuses"])==["200"], x' "$out" 2>/dev/null \
      && break
    echo "$name: requests failed (try $try): $out" >&2
    tail -n 20 "$work"/*.err >&2
    [ "$try" = 2 ] && exit 1
    sleep 2
  done
  callgrind_control -d "$pid" >/dev/null 2>&1 || { echo "$name: callgrind_control -d failed" >&2; exit 1; }
  [ "$(find "$work" -name "$7.*" | wc -l)" -gt "$dumps" ] || { echo "$name: no new dump" >&2; exit 1; }
  # The newest dump of this process holds the counts since the zeroing.
  local dump; dump=$(ls -t "$work/$7".* | head -1)
  total=$(grep -h '^totals:' "$dump" | awk '{print $2}')
  # Allocations per request: the calls to malloc and calloc in the same dump.
  mkdir -p "$work/allocs"
  awk -v n="$n" '/^cfn=/ { hit = ($0 == "cfn=malloc" || $0 == "cfn=calloc") }
    /^calls=/ && hit { sub(/^calls=/, ""); c += $1 } END { printf "%d\n", c / n }' "$dump" \
    > "$work/allocs/$7-$name"
  echo $(( total / n ))
}

gw="http://127.0.0.1:$GW_PORT/v1/chat/completions"
before="http://127.0.0.1:$BEFORE_PORT/v1/chat/completions"
base="http://127.0.0.1:$BASE_PORT/v1/chat/completions"
# case NAME: the gateway's body, header and request count for it; the baseline's body
# (empty: its figure is another case's) and the case whose figure it reuses.
spec() {
  local s=${small//MODEL/openai\/gpt-4o-mini} st=${stream//MODEL/openai\/gpt-4o-mini}
  local bs=${small//MODEL/gpt-4o-mini} bst=${stream//MODEL/gpt-4o-mini}
  case $1 in
    chat) SPEC=("$s" "" "$REQUESTS" "$bs" "") ;;
    stream) SPEC=("$st" "" "$REQUESTS" "$bst" "") ;;
    cache-hit) SPEC=("$s" "x-switchyard-cache: ttl=3600" "$REQUESTS" "$bs" chat) ;;
    translated-stream) SPEC=("${stream//MODEL/claude}" "" "$REQUESTS" "$bst" stream) ;;
    fallback) SPEC=("${small//MODEL/fallback}" "" "$REQUESTS" "$bs" chat) ;;
    1MiB) SPEC=("@$work/large-gw.json" "" "$(( REQUESTS / 10 ))" "@$work/large-direct.json" "") ;;
    *) echo "unknown case $1" >&2; exit 2 ;;
  esac
}
declare -A SY BASE OLD
for c in "${cases[@]}"; do
  spec "$c"
  SY[$c]=$(measure "$c" "$SY_PID" "$gw" sk-sy-load-test "${SPEC[0]}" "${SPEC[1]}" sy.out "${SPEC[2]}")
  if [ -n "$BEFORE_BIN" ]; then
    OLD[$c]=$(measure "$c" "$BEFORE_PID" "$before" sk-sy-load-test "${SPEC[0]}" "${SPEC[1]}" before.out "${SPEC[2]}")
  fi
  if [ -n "${SPEC[4]}" ] && [ -n "${BASE[${SPEC[4]}]:-}" ]; then
    BASE[$c]=${BASE[${SPEC[4]}]}
  else
    BASE[$c]=$(measure "$c" "$BASE_PID" "$base" sk-mock-load "${SPEC[3]}" "" base.out "${SPEC[2]}")
  fi
done
{ kill -9 "$SY_PID" "$BASE_PID" ${BEFORE_PID:-}; wait "$SY_PID" "$BASE_PID" ${BEFORE_PID:-}; } 2>/dev/null || true
if [ -n "${DUMPS_DIR:-}" ]; then mkdir -p "$DUMPS_DIR" && cp "$work"/*.out.* "$DUMPS_DIR"/; fi

{
  for c in "${cases[@]}"; do
    base_case=$c; spec "$c"
    [ -n "${SPEC[4]}" ] && [ ! -e "$work/allocs/base.out-$c" ] && base_case=${SPEC[4]}
    old=; [ -n "$BEFORE_BIN" ] && old="${OLD[$c]} $(cat "$work/allocs/before.out-$c")"
    echo "$c ${SY[$c]} ${BASE[$c]} $(cat "$work/allocs/sy.out-$c") $(cat "$work/allocs/base.out-$base_case") $old"
  done
} > "$work/table.txt"

python3 - "$work/table.txt" "$RESULTS_FILE" "$REQUESTS" "$WARMUP" "$PROFILE" "$REV" "$BEFORE_BIN" <<'PY'
import datetime, platform, sys
table, out_path, requests, warmup, profile, rev, before = sys.argv[1:8]
rows = [l.split() for l in open(table)]
head = "| case | switchyard | baseline | ratio | allocations: switchyard | baseline |"
rule = "|---|---:|---:|---:|---:|---:|"
if before:
    head += " before | now/before | allocations before |"
    rule += "---:|---:|---:|"
md = [head, rule]
for c, s, b, sa, ba, *old in rows:
    line = f"| {c} | {int(s):,} | {int(b):,} | {int(s) / int(b):.2f}x | {int(sa):,} | {int(ba):,} |"
    if old:
        line += f" {int(old[0]):,} | {int(s) / int(old[0]):.2f}x | {int(old[1]):,} |"
    md.append(line)
md = "\n".join(md)
print(md)
if out_path != "/dev/null":
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    with open(out_path, "a") as f:
        f.write(
            f"\n## load-tests/instructions.sh, {now}, {rev} (written by the script)\n\n"
            f"Command: `REQUESTS={requests} WARMUP={warmup} PROFILE={profile}{' BEFORE_BIN=' + before if before else ''} load-tests/instructions.sh`. "
            f"Instructions per request under callgrind (whole process, {profile} build, one worker thread), "
            f"{cpu}, Linux {platform.release()}. cache-hit's baseline is its proxied request; "
            "translated-stream's baseline passes the OpenAI stream through untranslated; fallback's "
            "baseline is its plain request. Allocations: calls to malloc and calloc per request, "
            "from the same dumps.\n\n"
            f"{md}\n"
        )
PY
for c in "${cases[@]}"; do
  python3 -c 'import sys; c,s,b=sys.argv[1:4]; print(f"{c} {s} {b} {int(s)/int(b):.2f}")' "$c" "${SY[$c]}" "${BASE[$c]}"
done | tee "$work/lines.txt"
if [ -n "$REFERENCE" ]; then
  python3 - "$work/lines.txt" "$REFERENCE" <<'PY'
import os, sys
now = {l.split()[0]: int(l.split()[1]) for l in open(sys.argv[1])}
failed = False
for line in open(sys.argv[2]):
    line = line.split("#")[0].split()
    if len(line) != 2:
        continue
    case, ref = line[0], int(line[1])
    got = now.get(case)
    if got is None and os.environ.get("CASES"):
        print(f"not measured: {case} (CASES)")
    elif got is None:
        print(f"REGRESSION CHECK: no figure for {case}"); failed = True
    elif got > ref * 1.10:
        print(f"REGRESSION: {case} {got} instructions per request, {got / ref - 1:.1%} above the reference {ref}"); failed = True
    else:
        print(f"ok: {case} {got} vs reference {ref} ({got / ref - 1:+.1%})")
sys.exit(1 if failed else 0)
PY
fi
