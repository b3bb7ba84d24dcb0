# Installs what building and testing switchyard needs on a fresh Debian machine, only if missing.
# Sourced by scripts/demo.sh and scripts/test.sh.

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    echo "==> installing missing Debian packages: $*" >&2
    if [ -z "${SWITCHYARD_APT_UPDATED:-}" ]; then
        as_root apt-get update -qq
        export SWITCHYARD_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

ensure_build_deps() {
    command -v cargo >/dev/null || {
        echo "cargo not found: install Rust (https://rustup.rs) first" >&2
        exit 1
    }
    local missing=()
    command -v cmake >/dev/null || missing+=(cmake)   # pingora builds zlib-ng with cmake
    command -v cc >/dev/null || missing+=(build-essential)
    [ -e /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)  # upstream TLS roots
    if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}

ensure_python_venv() {
    command -v python3 >/dev/null || apt_install python3 python3-venv python3-pip
    if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
        apt_install python3-venv python3-pip
    fi
}

# The shared-limits tests start their own redis-server (Debian package `redis-server`).
ensure_redis() {
    command -v redis-server >/dev/null || apt_install redis-server
}

# The fleet-ledger tests start their own Postgres (Debian package `postgresql`; its programs
# live in /usr/lib/postgresql/<version>/bin, not on PATH).
ensure_postgres() {
    postgres_bin >/dev/null 2>&1 || apt_install postgresql
}

# The directory holding initdb and postgres (the newest installed version).
postgres_bin() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$d" ] && [ -x "$d/initdb" ] || return 1
    echo "$d"
}

# The dashboard test (tests/dashboard.rs) drives a headless browser (Debian package `chromium`).
ensure_chromium() {
    command -v chromium >/dev/null || apt_install chromium
}

# load-tests/instructions.sh counts instructions per request under callgrind (package `valgrind`,
# which brings callgrind_control).
ensure_valgrind() {
    command -v valgrind >/dev/null && command -v callgrind_control >/dev/null || apt_install valgrind
}
