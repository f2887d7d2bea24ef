# Shared by the benchmark scripts: start and stop a release server.
# Source it; it sets $pid and $url.

pid=""
stop() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=""; }
trap stop EXIT
# start BINARY DATABASE_URL [ENV=VALUE...]: serves on a free port, sets $pid and $url.
start() {
    local bin=$1 db=$2
    shift 2
    local port=$((20000 + RANDOM % 20000))
    # One load generator stands for many clients: the per-address auth
    # throttle would measure itself instead of the server (callers may
    # still pass AUTH_ATTEMPTS_PER_MINUTE to override).
    env AUTH_ATTEMPTS_PER_MINUTE=1000000 "$@" DATABASE_URL="$db" PORT=$port HOST=127.0.0.1 LOG_LEVEL=warn "$bin" serve >/dev/null 2>&1 &
    pid=$!
    url=http://127.0.0.1:$port
    for _ in $(seq 1 200); do curl -sf "$url/healthz" >/dev/null && return; sleep 0.02; done
    echo "server did not start" >&2
    exit 1
}
