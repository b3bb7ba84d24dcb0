#!/usr/bin/env bash
# Starts a throwaway redis-server on a free loopback port for the shared-limits tests, and
# prints "PORT PID" once it answers. Installs the Debian package if it is missing. The server
# runs in a temporary directory with no persistence; stop it with `kill PID`.
#
#   read -r port pid < <(scripts/redis.sh)
#   scripts/redis.sh --port 6390        # a given port (restarting a stopped one)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/deps.sh
ensure_redis >&2

port=""
if [ "${1:-}" = "--port" ]; then port="$2"; fi
if [ -z "$port" ]; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
        || shuf -i 20000-60000 -n 1)
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-redis.XXXXXX")
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$dir" --daemonize no --logfile "$dir/redis.log" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "$port $pid"
        exit 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "redis-server exited: $(cat "$dir/redis.log" 2>/dev/null)" >&2
        exit 1
    fi
    sleep 0.05
done
kill "$pid" 2>/dev/null || true
echo "redis-server did not answer on port $port" >&2
exit 1
