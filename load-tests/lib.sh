# Helpers shared by the load-test scripts (sourced, not run).

# A free loopback port.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits (60 s at most) until every given loopback port accepts a connection.
wait_ports() {
  local port ready
  for _ in $(seq 600); do
    ready=1
    for port in "$@"; do
      (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { ready=0; break; }
    done
    [ "$ready" = 1 ] && return 0
    sleep 0.1
  done
  echo "ports $* never opened" >&2
  return 1
}
