#!/usr/bin/env bash
# The tuning measurements of issue #6, side by side: allocator (glibc as
# shipped with its tunables, glibc untuned, jemalloc), tokio worker threads,
# database pool size and SQLite page cache. Builds four release binaries
# (lean and realtime, each with glibc and with jemalloc), seeds 10k stories,
# and prints a markdown table (scripts/tuning-table.py). About 25 minutes,
# most of it the four release builds.
#   scripts/tuning.sh            # build and measure
#   SKIP_BUILD=1 scripts/tuning.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=${TUNING_OUT:-target/tuning}
mkdir -p "$out"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

if [ -z "${SKIP_BUILD:-}" ]; then
    echo "== building" >&2
    cargo build --release -p storybook-load -q
    for build in lean realtime; do
        features=""
        [ "$build" = realtime ] && features="realtime"
        cargo build --release --bin storybook -q --features "$features"
        cp target/release/storybook "$out/storybook-$build-glibc"
        cargo build --release --bin storybook -q --features "$features,jemalloc"
        cp target/release/storybook "$out/storybook-$build-jemalloc"
    done
fi
load=target/release/storybook-load

. scripts/server-lib.sh
# http NAME SCENARIO CONCURRENCY [ENV=VALUE...] on the seeded database
http() {
    local name=$1 scenario=$2 concurrency=$3 bin=$4
    shift 4
    start "$bin" "sqlite://$db" "$@"
    $load http --url "$url" --pid "$pid" --scenario "$scenario" --concurrency "$concurrency" \
        --duration 5 --label "$name" --out "$out/http-$name.json" >/dev/null 2>&1
    stop
}

db="$out/seed-10000.db"
[ -f "$db" ] || "$out/storybook-lean-glibc" seed --database-url "sqlite://$db" --stories 10000 --users 200 >&2

# "Untuned" glibc: any GLIBC_TUNABLES stops the binary's own re-exec.
untuned=GLIBC_TUNABLES=glibc.malloc.check=0
echo "== allocators: idle RSS after touching every route" >&2
for alloc in glibc untuned jemalloc; do
    bin="$out/storybook-lean-${alloc/untuned/glibc}"
    rm -f "$out/idle.db"*
    if [ "$alloc" = untuned ]; then
        env "$untuned" scripts/idle-rss.sh "$bin" "sqlite://$out/idle.db" > "$out/idle-$alloc.txt"
    else
        scripts/idle-rss.sh "$bin" "sqlite://$out/idle.db" > "$out/idle-$alloc.txt"
    fi
done
echo "== allocators: mixed HTTP and the library page at 64 connections" >&2
for alloc in glibc untuned jemalloc; do
    bin="$out/storybook-lean-${alloc/untuned/glibc}"
    extra=()
    [ "$alloc" = untuned ] && extra=("$untuned")
    http "alloc-$alloc-mix" mix 64 "$bin" "${extra[@]}"
    http "alloc-$alloc-library" library 64 "$bin" "${extra[@]}"
done
echo "== allocators: 1,000 sockets, then all gone (realtime)" >&2
for alloc in glibc jemalloc; do
    rm -f "$out/ws.db"*
    start "$out/storybook-realtime-$alloc" "sqlite://$out/ws.db" WS_MAX_PER_USER=64
    $load ws --url "$url" --pid "$pid" --connections 1000 --channels 10 --per-user 50 --messages 1000 --rate 200 \
        --out "$out/ws-$alloc.json" >/dev/null 2>&1
    sleep 12 # jemalloc returns freed pages after its decay time (10 s)
    echo "$alloc $(ps -o rss= -p "$pid")" > "$out/ws-$alloc-settled.txt"
    stop
done
echo "== tokio worker threads" >&2
for workers in 1 2 4; do
    http "workers-$workers-library" library 64 "$out/storybook-lean-glibc" TOKIO_WORKER_THREADS=$workers
    http "workers-$workers-mix" mix 64 "$out/storybook-lean-glibc" TOKIO_WORKER_THREADS=$workers
done
echo "== database pool size" >&2
for pool in 1 2 5 10; do
    http "pool-$pool-mix" mix 64 "$out/storybook-lean-glibc" DATABASE_POOL_SIZE=$pool
    http "pool-$pool-search" search 16 "$out/storybook-lean-glibc" DATABASE_POOL_SIZE=$pool
done
echo "== SQLite page cache per connection" >&2
for kib in 256 1024 4096; do
    http "cache-$kib-search" search 16 "$out/storybook-lean-glibc" SQLITE_CACHE_KIB=$kib
    http "cache-$kib-uncached-library" library 16 "$out/storybook-lean-glibc" SQLITE_CACHE_KIB=$kib CACHE_MAX_ENTRIES=0
done

python3 scripts/tuning-table.py "$out"
