#!/usr/bin/env bash
# Idle RSS after a warm-up that touches every route.
# Usage: scripts/idle-rss.sh [binary] [database-url]
# Starts the server on a free port, sends one request to each route (so
# lazily built things are counted), waits, and prints `ps -o rss` in KiB.
set -euo pipefail
bin=${1:-target/release/storybook}
tmp=$(mktemp -d)
url=${2:-sqlite://$tmp/idle.db}
port=$((20000 + RANDOM % 20000))
DATABASE_URL=$url PORT=$port HOST=127.0.0.1 LOG_LEVEL=warn "$bin" serve >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
base=http://127.0.0.1:$port
for _ in $(seq 1 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.05; done
j=(-H 'content-type: application/json')
user="warm$RANDOM$RANDOM"
token=$(curl -s "${j[@]}" -d "{\"username\":\"$user\",\"email\":\"$user@example.com\",\"password\":\"password123\"}" "$base/api/auth/register" | sed -E 's/.*"token":"([^"]+)".*/\1/')
auth=(-H "authorization: Bearer $token")
curl -s "${j[@]}" -d "{\"username\":\"$user\",\"password\":\"password123\"}" "$base/api/auth/login" >/dev/null
curl -s "${j[@]}" -d "{\"username\":\"$user\",\"password\":\"wrong-password\"}" "$base/api/auth/login" >/dev/null
for path in /healthz /readyz /api/features /api/openapi.json /metrics /api/me /api/me/settings "/api/users/$user"; do
    curl -s "${auth[@]}" "$base$path" >/dev/null
done
curl -s -X PATCH "${j[@]}" "${auth[@]}" -d '{"bio":"hello"}' "$base/api/me" >/dev/null
curl -s -X PATCH "${j[@]}" "${auth[@]}" -d '{"theme":"dark"}' "$base/api/me/settings" >/dev/null
curl -s "${j[@]}" -d '{"text":"a classic f.u.c.k"}' "$base/api/profanity/check" >/dev/null
curl -s "$base/no/such/route" >/dev/null
curl -s -X POST "${j[@]}" "${auth[@]}" "$base/api/auth/logout" >/dev/null
sleep 2
echo "rss_kib=$(ps -o rss= -p $pid | tr -d " ") $(grep -E "RssAnon|RssFile" /proc/$pid/status | tr -s " \t" " " | tr "\n" " ")"
