#!/usr/bin/env bash
# Starts a throwaway Postgres on a free loopback port for the fleet-ledger tests, and prints
# "PORT PID DIR URL" once it accepts connections. Installs the Debian package if it is missing.
# The cluster lives in a temporary directory DIR (trust auth for user `switchyard`, fsync off);
# stop it with `kill -INT PID` and remove DIR. As root, the server runs as the `postgres` user
# (Postgres refuses to run as root).
#
#   read -r port pid dir url < <(scripts/postgres.sh)
#   scripts/postgres.sh --dir DIR --port PORT   # start an existing cluster again
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/deps.sh
ensure_postgres >&2
bin=$(postgres_bin)

port=""
dir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --port) port="$2"; shift 2 ;;
        --dir) dir="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -z "$port" ]; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
        || shuf -i 20000-60000 -n 1)
fi

# As root: run Postgres' programs as the `postgres` user (setpriv execs, so PID is the server's).
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
    as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups --)
fi

if [ -z "$dir" ]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-pg.XXXXXX")
    chmod 755 "$dir"
    mkdir "$dir/data"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir" "$dir/data"
    "${as_pg[@]}" "$bin/initdb" -D "$dir/data" -U switchyard --auth=trust -E UTF8 \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
fi

"${as_pg[@]}" "$bin/postgres" -D "$dir/data" -p "$port" -k "$dir" \
    -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
    -c full_page_writes=off >>"$dir/postgres.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
    if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" 2>/dev/null; then
        echo "$port $pid $dir postgres://switchyard@127.0.0.1:$port/postgres"
        exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "postgres exited: $(tail -n 20 "$dir/postgres.log" 2>/dev/null)" >&2
        exit 1
    fi
    sleep 0.05
done
kill -INT "$pid" 2>/dev/null || true
echo "postgres did not answer on port $port: $(tail -n 20 "$dir/postgres.log")" >&2
exit 1
