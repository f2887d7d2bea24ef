#!/usr/bin/env bash
# Library speed and memory at a seeded size (issue #3's figures).
# Usage: scripts/library-bench.sh <sqlite-db-file> [seconds]
# Seed first: target/release/storybook seed --database-url sqlite://FILE --stories 100000 --users 200
# Prints one JSON line per run: single-connection latency (server time plus
# loopback) for library page, story detail, one- and two-word search, then
# 10,000 mixed requests at 16 connections with the server's RSS after.
set -euo pipefail
db=$1
seconds=${2:-5}
port=$((20000 + RANDOM % 20000))
DATABASE_URL="sqlite://$db" PORT=$port HOST=127.0.0.1 LOG_LEVEL=warn target/release/storybook serve >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.05; done
load() { target/release/storybook-load http --url "http://127.0.0.1:$port" --pid "$pid" "$@" 2>/dev/null; }
for scenario in library detail search search2; do
    load --scenario "$scenario" --concurrency 1 --duration "$seconds" --label "$(basename "$db") c1"
done
load --scenario mix --concurrency 16 --requests 10000 --label "$(basename "$db") mix 10k"
