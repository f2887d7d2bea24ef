#!/usr/bin/env bash
# Cold start: the time from starting the process to its first answered
# request (`/healthz` 200), as after a free service's spin-down. Each run
# drops the page cache first (a woken container reads the binary from
# disk) unless WARM=1; CPUS=0.1 runs the server in a cgroup capped like
# the free plan (0.1 CPU, 512 MB; needs root).
# Usage: scripts/cold-start.sh [binary] [database-url] [runs]
#   no database URL: a new SQLite file each run (migrations included).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/storybook}
url=${2:-}
runs=${3:-5}
procs=()
if [ -n "${CPUS:-}" ]; then
    . scripts/cgroup-lib.sh
    trap remove_cgroups EXIT
    make_cgroup "$CPUS" 512
fi
for run in $(seq 1 "$runs"); do
    tmp=$(mktemp -d)
    database=${url:-sqlite://$tmp/cold.db}
    port=$((20000 + RANDOM % 20000))
    [ "${WARM:-0}" = 1 ] || { sync; echo 3 > /proc/sys/vm/drop_caches; }
    start=$(date +%s%N)
    DATABASE_URL=$database PORT=$port HOST=127.0.0.1 LOG_LEVEL=warn PROCS="${procs[*]}" \
        sh -c 'for f in $PROCS; do echo $$ > "$f"; done; exec "$0" serve' "$bin" >/dev/null 2>&1 &
    pid=$!
    until curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; do
        kill -0 $pid 2>/dev/null || { echo "the server exited" >&2; exit 1; }
        sleep 0.002
    done
    end=$(date +%s%N)
    echo "run $run: first answer after $(( (end - start) / 1000000 )) ms"
    kill $pid; wait $pid 2>/dev/null || true
    rm -rf "$tmp"
done
