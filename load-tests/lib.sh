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

# Writes DIR/large-direct.json (model gpt-4o-mini, for the mock and the baseline) and
# DIR/large-gw.json (openai/gpt-4o-mini, for the gateway): a short message and 1 MiB of text in
# a field of its own (a 1 MiB prompt does not fit gpt-4o-mini's context window, and routing
# refuses it since issue #14).
write_large_bodies() {
  python3 - "$1" <<'PY'
import json, sys
text = ("The quick brown fox jumps over the lazy dog. " * 23302)[: 1 << 20]
for name, model in (("large-direct.json", "gpt-4o-mini"), ("large-gw.json", "openai/gpt-4o-mini")):
    with open(f"{sys.argv[1]}/{name}", "w") as f:
        json.dump({"model": model, "messages": [{"role": "user", "content": "hi"}], "pad": text}, f)
PY
}

# The fallback route's config (TOML, to stdout): providers `openai` (the mock on MOCK_PORT) and
# `flaky` (a mock answering 503 on FLAKY_PORT), route `fallback` (flaky first), breakers that
# never open (the failover itself is measured), gateway key `load` (sk-sy-load-test).
fallback_config() { # MOCK_PORT FLAKY_PORT
  cat <<TOML
[[providers]]
name = "openai"
kind = "openai"
base_url = "http://127.0.0.1:$1/v1"
api_keys = ["sk-mock-load"]
[[providers]]
name = "flaky"
kind = "openai"
base_url = "http://127.0.0.1:$2/v1"
api_keys = ["sk-mock-load"]
[[routes]]
name = "fallback"
targets = ["flaky/gpt-4o-mini", "openai/gpt-4o-mini"]
[resilience]
breaker_failures = 1000000   # keep trying the failing target: measure the failover itself
[[gateway_keys]]
name = "load"
key = "sk-sy-load-test"
TOML
}
