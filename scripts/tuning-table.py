"""Prints the tuning table from the documents scripts/tuning.sh wrote."""
import json
import os
import sys

out = sys.argv[1]


def http(name):
    path = os.path.join(out, f"http-{name}.json")
    if not os.path.exists(path):
        return "–"
    r = json.load(open(path))
    return (f"{r['requests_per_second']:.0f} req/s, p99 {r['latency_ms']['p99']} ms, "
            f"peak {r['rss_kib']['peak'] / 1024:.1f} MB, errors {r['errors']}")


def idle(alloc):
    path = os.path.join(out, f"idle-{alloc}.txt")
    for word in open(path).read().split() if os.path.exists(path) else []:
        if word.startswith("rss_kib="):
            return f"{int(word.split('=')[1]) / 1024:.1f} MB"
    return "–"


def ws(alloc):
    path = os.path.join(out, f"ws-{alloc}.json")
    if not os.path.exists(path):
        return "–"
    r = json.load(open(path))["rss_kib"]
    settled = open(os.path.join(out, f"ws-{alloc}-settled.txt")).read().split()[1]
    return (f"idle {r['idle_before'] / 1024:.1f} MB, holding {r['holding'] / 1024:.1f} MB, "
            f"after {r['after'] / 1024:.1f} MB, 12 s later {int(settled) / 1024:.1f} MB")


print("| setting | measured |")
print("| --- | --- |")
names = {"glibc": "glibc with the shipped tunables (default)", "untuned": "glibc untuned", "jemalloc": "jemalloc (`--features jemalloc`)"}
for alloc, label in names.items():
    print(f"| {label}: idle RSS, lean, SQLite | {idle(alloc)} |")
    print(f"| {label}: mixed HTTP, 64 connections | {http(f'alloc-{alloc}-mix')} |")
    print(f"| {label}: library page, 64 connections | {http(f'alloc-{alloc}-library')} |")
for alloc in ("glibc", "jemalloc"):
    print(f"| {names[alloc]}: realtime, 1,000 sockets | {ws(alloc)} |")
for workers in (1, 2, 4):
    print(f"| TOKIO_WORKER_THREADS={workers}: library page, 64 connections | {http(f'workers-{workers}-library')} |")
    print(f"| TOKIO_WORKER_THREADS={workers}: mixed HTTP, 64 connections | {http(f'workers-{workers}-mix')} |")
for pool in (1, 2, 5, 10):
    print(f"| DATABASE_POOL_SIZE={pool}: mixed HTTP, 64 connections | {http(f'pool-{pool}-mix')} |")
    print(f"| DATABASE_POOL_SIZE={pool}: search, 16 connections | {http(f'pool-{pool}-search')} |")
for kib in (256, 1024, 4096):
    print(f"| SQLITE_CACHE_KIB={kib}: search, 16 connections | {http(f'cache-{kib}-search')} |")
    print(f"| SQLITE_CACHE_KIB={kib}: library page uncached, 16 connections | {http(f'cache-{kib}-uncached-library')} |")
