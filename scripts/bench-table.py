"""Prints the benchmark table from the JSON documents scripts/bench.sh wrote."""
import glob
import json
import os
import sys

out = sys.argv[1]


def load(name):
    path = os.path.join(out, name)
    return json.load(open(path)) if os.path.exists(path) else None


def mb(kib):
    return f"{kib / 1024:.1f} MB" if kib else "–"


rows = []
cold = load("cold.json")
if cold:
    rows.append(("cold start to first 200 on /healthz (migrations applied)", f"{cold['ms']} ms", "≤ 100 ms"))
for path in sorted(glob.glob(os.path.join(out, "idle-*.txt"))):
    for line in open(path):
        parts = line.split()
        if len(parts) >= 3 and parts[2].startswith("rss_kib="):
            kib = int(parts[2].split("=")[1])
            budget = {"lean": "≤ 10 MB (SQLite)", "realtime": "≤ 12 MB"}.get(parts[0], "")
            rows.append((f"idle RSS, {parts[0]}, {parts[1]}, after touching every route", mb(kib), budget))
ceiling = load("ceiling.json")
for path in sorted(glob.glob(os.path.join(out, "http-*.json"))):
    r = json.load(open(path))
    lat = r["latency_ms"]
    share = f" ({r['requests_per_second'] / ceiling['requests_per_second']:.0%} of ceiling)" if ceiling else ""
    rows.append((
        f"HTTP {r['scenario']}, {r['label']} stories, {r['concurrency']} connections",
        f"{r['requests_per_second']:.0f} req/s{share}, p50 {lat['p50']} ms, p99 {lat['p99']} ms, peak {mb(r['rss_kib']['peak'])}, errors {r['errors']}",
        "",
    ))
if ceiling:
    rows.append(("ceiling: /healthz, 64 connections", f"{ceiling['requests_per_second']:.0f} req/s, p99 {ceiling['latency_ms']['p99']} ms", ""))
mix = load("mix-64.json")
if mix:
    rows.append(("mixed HTTP, 64 connections, 20,000 requests", f"{mix['requests_per_second']:.0f} req/s, peak {mb(mix['rss_kib']['peak'])}", "peak ≤ 32 MB"))
soak = load("soak.json")
if soak and soak.get("rss_by_requests"):
    series = soak["rss_by_requests"]
    at_100k = next((kib for n, kib in series if n >= 100_000), series[0][1])
    end = series[-1][1]
    rows.append((
        f"soak, {soak['requests']} requests, RSS every 10,000",
        f"{mb(at_100k)} at 100k → {mb(end)} at the end ({(end - at_100k) / at_100k:+.1%}), {soak['requests_per_second']:.0f} req/s, errors {soak['errors']}",
        "end within 5% of 100k",
    ))
for n in (1000, 10000):
    ws = load(f"ws-{n}.json")
    if ws:
        rss = ws["rss_kib"]
        rows.append((
            f"WebSocket: {ws['connected']} connections / {ws['channels']} channels, {ws['messages']} messages at {ws['rate']:.0f}/s",
            f"delivered {ws['delivered']}/{ws['expected']}, duplicates {ws['duplicates']}, fan-out p50 {ws['latency_ms']['p50']} ms p99 {ws['latency_ms']['p99']} ms; "
            f"RSS idle {mb(rss['idle_before'])}, holding {mb(rss['holding'])} ({ws['bytes_per_connection']:.0f} B/connection), after {mb(rss['after'])}",
            "1k: p99 ≤ 25 ms, 0 lost; 10k: ≤ 100 MB, p99 ≤ 100 ms",
        ))
print("| figure | measured | budget |")
print("| --- | --- | --- |")
for row in rows:
    print("| " + " | ".join(row) + " |")
