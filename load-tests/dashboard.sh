#!/usr/bin/env bash
# The dashboard at scale: fills two ledgers with ROWS synthetic rows through the real writer
# (with and without the schema-4 filter indexes) and times the writer per row; then serves the
# indexed one from the release binary and times each request the page makes on load (curl,
# loopback only, a bounded number of requests), and the whole set fired together as the page
# does, for each period the page offers a day or more of (24h, 7d, 30d, all).
#
#   load-tests/dashboard.sh [ROWS]        # default 1000000
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rows="${1:-1000000}"
cargo build --locked --release --bin switchyard --example ledger_fill >&2
dir=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-dashboard-load.XXXXXX")
trap 'kill "${gw:-}" 2>/dev/null || true; rm -rf "$dir"' EXIT

echo "== insert cost ($rows rows, the ledger writer, WAL, batches of 512)"
# One ledger at a time: a million rows take 0.3 to 0.55 GB.
target/release/examples/ledger_fill "$dir/plain.db" "$rows" --without-dashboard-indexes
echo "    file: $(stat -c %s "$dir/plain.db") bytes"
rm -f "$dir"/plain.db*
target/release/examples/ledger_fill "$dir/indexed.db" "$rows"
echo "    file: $(stat -c %s "$dir/indexed.db") bytes"

free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
gw_port=$(free); mock_port=$(free); admin=$(free)
sed -e "s/127.0.0.1:8080/127.0.0.1:$gw_port/; s/127.0.0.1:9100/127.0.0.1:$mock_port/g" conf/demo.toml \
    | sed -e '/^\[admin\]/,/^$/d' > "$dir/gw.toml"
printf '\n[ledger]\npath = "%s"\n\n[admin]\nlisten = "127.0.0.1:%s"\n' "$dir/indexed.db" "$admin" >> "$dir/gw.toml"
target/release/switchyard serve --config "$dir/gw.toml" 2>"$dir/gw.log" &
gw=$!
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$admin/healthz" >/dev/null && break; sleep 0.05; done

base="http://127.0.0.1:$admin"
id=$(curl -sf "$base/admin/requests?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"][0]["request_id"])')
t() { curl -s -o /dev/null -w "%{http_code} %{time_total}s %{size_download}B" "$base$1"; }
echo "== each request of a page load, cold then warm (seconds)"
for path in \
    "/ui" "/ui/app.js" \
    "/admin/spend/series?since=24h&buckets=24&charts=svg" \
    "/admin/spend/series?since=7d&buckets=24&charts=svg" \
    "/admin/spend/series?since=30d&buckets=24&charts=svg" \
    "/admin/spend/series?since=all&buckets=24&charts=svg" \
    "/admin/requests?limit=50" \
    "/admin/requests?limit=50&key=key-7" \
    "/admin/requests?limit=50&feature=feature-3" \
    "/admin/requests?limit=50&model=claude-opus-4-1" \
    "/admin/requests?limit=50&status=500" \
    "/admin/requests?limit=50&cache=hit" \
    "/admin/requests?limit=50&key=key-7&status=502&cache=miss" \
    "/admin/requests?limit=50&feature=no-such-feature" \
    "/admin/requests/$id" "/ui/waterfall.svg?id=$id" "/admin/targets"; do
    printf '  %-62s %s | %s\n' "$path" "$(t "$path")" "$(t "$path")"
done
echo "== a whole page load (the five requests the page fires at once), for each period"
for since in 24h 7d 30d all; do
    best=""
    for _ in 1 2 3; do
        start=$(date +%s.%N)
        pids=()
        for path in "/admin/spend/series?since=$since&buckets=24&charts=svg" "/admin/requests?limit=50" \
            "/admin/targets" "/admin/experiments" "/ui"; do
            curl -s -o /dev/null "$base$path" &
            pids+=($!)
        done
        wait "${pids[@]}"
        end=$(date +%s.%N)
        best="$best $(python3 -c "print(f'{$end - $start:.3f}')")"
    done
    echo "  page load, period $since (three loads):$best s"
done
