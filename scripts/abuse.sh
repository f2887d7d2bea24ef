#!/usr/bin/env bash
# The abuse benchmark (issue #12): a lean release server on SQLite with
# 10,000 seeded stories and REQUEST_TIMEOUT_SECS=5, attacked by
# `storybook-load abuse` scenario by scenario; each prints its figures
# beside its budget, then a markdown table. About 8 minutes with the 30 s
# settling time after each attack.
#   scripts/abuse.sh                       # every scenario
#   scripts/abuse.sh --scenario profanity  # one (arguments go to the tool)
#   SETTLE=5 scripts/abuse.sh              # shorter settling (RSS after is then less telling)
#   REDIS_URL=redis://127.0.0.1:6379 scripts/abuse.sh --realtime
#                                          # issue #13's attacks on the realtime build
#                                          # (memory broker without REDIS_URL)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${ABUSE_OUT:-target/abuse}
mkdir -p "$out"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

realtime=false
for arg in "$@"; do [ "$arg" = --realtime ] && realtime=true; done
echo "== building (lean, realtime if asked, load tool)" >&2
cargo build --release --bin storybook -q
cp target/release/storybook "$out/storybook-lean"
server="$out/storybook-lean"
if $realtime; then
    cargo build --release --bin storybook --features realtime -q
    cp target/release/storybook "$out/storybook-realtime"
    server="$out/storybook-realtime"
fi
cargo build --release -p storybook-load -q

db="$out/abuse-10000.db"
if [ ! -f "$db" ]; then
    echo "== seeding 10,000 stories into $db" >&2
    "$out/storybook-lean" seed --database-url "sqlite://$db" --stories 10000 --users 200 >&2
fi
# A copy per run: the attacks write (drawings, accounts) and the seed stays clean.
cp "$db" "$out/run.db"
rm -f "$out/run.db-wal" "$out/run.db-shm"

. scripts/server-lib.sh
if [ -n "${REDIS_URL:-}" ]; then
    start "$server" "sqlite://$out/run.db" REQUEST_TIMEOUT_SECS=5 REDIS_URL="$REDIS_URL" REDIS_PREFIX="abuse$$"
else
    start "$server" "sqlite://$out/run.db" REQUEST_TIMEOUT_SECS=5
fi
echo "== server $pid at $url" >&2
target/release/storybook-load abuse --url "$url" --pid "$pid" \
    --settle-secs "${SETTLE:-30}" --request-timeout-secs 5 \
    --out "$out/abuse.json" "$@"
