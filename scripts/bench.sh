#!/usr/bin/env bash
# The standard benchmark set (issue #6): builds both release builds, seeds
# 10k and 100k stories, runs every measurement with storybook-load and
# prints a markdown table. About 8 minutes on the 2-core machine.
#   scripts/bench.sh            # everything
#   QUICK=1 scripts/bench.sh    # skip 100k stories and 10,000 sockets
#   NO_FREETIER=1 scripts/bench.sh  # without the capped runs (scripts/freetier.sh)
# Needs PostgreSQL at $BENCH_PG_URL for the PostgreSQL idle figure
# (default postgres://postgres@127.0.0.1:5432/test).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-target/bench}
mkdir -p "$out"
pg=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

echo "== building (lean, realtime, load tool)" >&2
cargo build --release --bin storybook -q
cp target/release/storybook "$out/storybook-lean"
cargo build --release --features realtime --bin storybook -q
cp target/release/storybook "$out/storybook-realtime"
cargo build --release -p storybook-load -q
load=target/release/storybook-load

. scripts/server-lib.sh

seed() {
    local file=$1 stories=$2
    if [ ! -f "$file" ]; then
        echo "== seeding $stories stories into $file" >&2
        "$out/storybook-lean" seed --database-url "sqlite://$file" --stories "$stories" --users 200 >&2
    fi
}

echo "== cold start" >&2
rm -f "$out/cold.db"*
t0=$(date +%s%N)
start "$out/storybook-lean" "sqlite://$out/cold.db"
t1=$(date +%s%N)
echo "{\"kind\":\"cold_start\",\"ms\":$(( (t1 - t0) / 1000000 ))}" > "$out/cold.json"
stop

echo "== idle RSS after touching every route" >&2
for build in lean realtime; do
    rm -f "$out/idle.db"*
    scripts/idle-rss.sh "$out/storybook-$build" "sqlite://$out/idle.db" | sed "s/^/$build sqlite /" > "$out/idle-$build-sqlite.txt"
    scripts/idle-rss.sh "$out/storybook-$build" "$pg" | sed "s/^/$build postgres /" > "$out/idle-$build-postgres.txt" || true
done

sizes="10000"
[ -z "${QUICK:-}" ] && sizes="10000 100000"
for stories in $sizes; do
    db="$out/seed-$stories.db"
    seed "$db" "$stories"
    start "$out/storybook-lean" "sqlite://$db"
    for c in 16 64; do
        for s in library detail search; do
            echo "== http $s $c connections, $stories stories" >&2
            $load http --url "$url" --pid "$pid" --scenario "$s" --concurrency $c --duration 5 \
                --label "$stories" --out "$out/http-$s-$c-$stories.json" >/dev/null 2>&1
        done
    done
    stop
done

echo "== ceiling: a trivial handler (/healthz) at 64 connections" >&2
start "$out/storybook-lean" "sqlite://$out/seed-10000.db"
$load http --url "$url" --pid "$pid" --scenario healthz --concurrency 64 --duration 5 --out "$out/ceiling.json" >/dev/null 2>&1
echo "== mixed HTTP at 64 connections (peak RSS)" >&2
$load http --url "$url" --pid "$pid" --scenario mix --concurrency 64 --requests 20000 --out "$out/mix-64.json" >/dev/null 2>&1
echo "== soak: 1,000,000 requests (mostly library reads, RSS every 10,000)" >&2
$load http --url "$url" --pid "$pid" --scenario soak --concurrency 32 --requests "${SOAK_REQUESTS:-1000000}" \
    --rss-every-requests 10000 --out "$out/soak.json" >/dev/null 2>&1
stop

echo "== websockets" >&2
rm -f "$out/ws.db"*
start "$out/storybook-realtime" "sqlite://$out/ws.db" WS_MAX_PER_USER=64
$load ws --url "$url" --pid "$pid" --connections 1000 --channels 10 --per-user 50 --messages 2000 --rate 200 \
    --out "$out/ws-1000.json" >/dev/null 2>&1
stop
if [ -z "${QUICK:-}" ]; then
    rm -f "$out/ws.db"*
    start "$out/storybook-realtime" "sqlite://$out/ws.db" WS_MAX_PER_USER=64
    $load ws --url "$url" --pid "$pid" --connections 10000 --channels 100 --per-user 50 --messages 400 --rate 40 \
        --out "$out/ws-10000.json" >/dev/null 2>&1
    stop
fi

python3 scripts/bench-table.py "$out"

# The same set under a hosting plan's CPU cap (issue #14): free (0.1 CPU)
# and starter (0.5 CPU), 512 MB. Needs root for the cgroups; about 12
# minutes. NO_FREETIER=1 leaves it out.
if [ -z "${NO_FREETIER:-}" ]; then
    if [ "$(id -u)" = 0 ]; then
        echo
        scripts/freetier.sh
    else
        echo "(the capped runs need root: sudo scripts/freetier.sh)" >&2
    fi
fi
