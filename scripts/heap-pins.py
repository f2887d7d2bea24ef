#!/usr/bin/env python3
"""Which live blocks keep glibc from giving memory back?

Usage (as root, on a running server; glibc's malloc, x86-64):

    scripts/heap-pins.py PID [BINARY]

glibc returns memory to the system only from the top of each heap: one live
block high in a heap keeps everything below it resident, however much of
it is free. This walks every heap of the process through /proc/PID/mem
(the main heap and each arena's heap), reports its size against what is in
use, and prints the highest live blocks with a hint of what they are:
printable bytes, pointers into the binary (with the nearest symbol when
BINARY is an unstripped build of the same code) and the static or
thread-local slot of the binary that points at them.

This is how the blocks that pinned 80 MB after 10,000 sockets had closed
were found (features.md, "after every client disconnects").
"""

import bisect
import re
import struct
import subprocess
import sys

HEAP_ALIGN = 64 << 20  # an arena's heaps are aligned to HEAP_MAX_SIZE
SHOWN = 12  # highest live blocks shown per heap


def mappings(pid):
    rows = []
    for line in open(f"/proc/{pid}/maps"):
        fields = line.split()
        low, high = (int(x, 16) for x in fields[0].split("-"))
        rows.append((low, high, fields[1], fields[5] if len(fields) > 5 else ""))
    return rows


class Symbols:
    """Nearest symbol for an address inside the binary's mappings."""

    def __init__(self, maps, binary):
        own = [(low, high) for low, high, _, name in maps if binary and name == binary]
        self.base = min((low for low, _ in own), default=0)
        self.end = max((high for _, high in own), default=0)
        self.table = []
        if binary:
            out = subprocess.run(["nm", "-C", "--defined-only", binary],
                                 capture_output=True, text=True).stdout
            for line in out.splitlines():
                parts = line.split(" ", 2)
                if len(parts) == 3:
                    try:
                        self.table.append((int(parts[0], 16), parts[2]))
                    except ValueError:
                        pass
        self.table.sort()
        self.addresses = [address for address, _ in self.table]

    def name(self, value):
        if not self.table or not self.base <= value < self.end:
            return None
        i = bisect.bisect_right(self.addresses, value - self.base) - 1
        return self.table[i][1][:100] if i >= 0 else None


def walk(data):
    """The chunks of one heap as (offset, size, in_use), or None."""
    for start in range(0, 8192, 16):  # after the heap's and arena's headers
        chunks, at = [], start
        while at + 16 <= len(data):
            size = struct.unpack_from("<Q", data, at + 8)[0] & ~7
            if size < 32 or size % 16 or at + size > len(data):
                break
            chunks.append([at, size, False])
            at += size
        if at == len(data) and len(chunks) > 1:
            # A chunk is in use when the next one's PREV_INUSE bit is set.
            for this, following in zip(chunks, chunks[1:]):
                this[2] = bool(struct.unpack_from("<Q", data, following[0] + 8)[0] & 1)
            return chunks
    return None


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    pid = int(sys.argv[1])
    binary = sys.argv[2] if len(sys.argv) > 2 else ""
    maps = mappings(pid)
    symbols = Symbols(maps, binary)
    memory = open(f"/proc/{pid}/mem", "rb")

    def read(address, length):
        memory.seek(address)
        return memory.read(length)

    writable = []
    for low, high, perms, name in maps:
        if "rw" in perms and high - low <= 256 << 20:
            try:
                writable.append((low, read(low, high - low), name))
            except OSError:
                pass

    def referrers(address):
        needle = struct.pack("<Q", address)
        found = []
        for low, data, name in writable:
            at = data.find(needle)
            while at != -1 and len(found) < 3:
                if at % 8 == 0 and name == binary:
                    found.append(symbols.name(low + at) or hex(low + at))
                elif at % 8 == 0 and not name:
                    found.append(f"anon {hex(low + at)}")
                at = data.find(needle, at + 1)
        return found

    for low, high, perms, name in maps:
        if perms != "rw-p":
            continue
        if name == "[heap]":
            label, end = "main heap", high
        elif not name and low % HEAP_ALIGN == 0:
            label = "arena heap"
            end = low + struct.unpack_from("<Q", read(low, 24), 16)[0]  # heap_info.size
        else:
            continue
        data = read(low, end - low)
        chunks = walk(data)
        if chunks is None:
            print(f"{label} at {hex(low)}: could not walk")
            continue
        live = [c for c in chunks[:-1] if c[2]]
        print(f"{label} at {hex(low)}: {len(data) / 1e6:.1f} MB, "
              f"{sum(c[1] for c in live)} B in {len(live)} live blocks, "
              f"top chunk {chunks[-1][1] / 1e6:.2f} MB")
        for offset, size, _ in live[-SHOWN:]:
            body = data[offset + 16: offset + min(size, 80)]
            text = re.sub(rb"[^ -~]", b".", body[:40]).decode()
            words = [struct.unpack_from("<Q", body, i)[0] for i in range(0, len(body) - 7, 8)]
            pointers = [n for n in map(symbols.name, words) if n][:2]
            print(f"  {offset / 1e6:8.3f} MB  {size:6d} B  {text!r}"
                  f"  points to {pointers}  held by {referrers(low + offset + 16)}")


if __name__ == "__main__":
    main()
