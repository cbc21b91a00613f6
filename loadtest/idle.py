#!/usr/bin/env python3
"""Opens N idle client connections through mcp-edge and reports its RSS before and after.

  idle.py sse PORT PID N        N GET streams on one MCP session, each held after its first event
  idle.py keepalive PORT PID N  N connections, each held idle after one answered request

Loopback only, standard library only (asyncio). Connections are opened in waves of
CONCURRENCY so the listen backlog never overflows; the whole run is bounded by DEADLINE seconds.
Prints one line: `mode=... conns=... rss_before_kib=... rss_after_kib=... per_conn_kib=...`.
"""
import asyncio
import sys
import time

CONCURRENCY = 200
DEADLINE = 120
SETTLE = 3.0


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head


async def initialize(port):
    """One MCP session through the proxy; returns the (proxy-sealed) session id."""
    body = b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"idle","version":"1"}}}'
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\n"
        b"Accept: application/json, text/event-stream\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    status, head = await read_head(reader)
    writer.close()
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"mcp-session-id":
            return value.strip()
    raise RuntimeError(f"initialize answered {status} without Mcp-Session-Id")


async def open_stream(port, sid, held):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"GET /mcp HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\nMcp-Session-Id: " + sid + b"\r\n\r\n"
    )
    status, _ = await read_head(reader)
    if status != 200:
        raise RuntimeError(f"GET stream answered {status}")
    await reader.readuntil(b"\n\n")  # the first event: the stream is up end to end
    held.append(writer)


async def open_keepalive(port, held):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    status, head = await read_head(reader)
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    if status != 200:
        raise RuntimeError(f"GET /healthz answered {status}")
    held.append(writer)


async def main(mode, port, pid, n):
    before = rss_kib(pid)
    held = []
    sid = await initialize(port) if mode == "sse" else None
    started = time.monotonic()
    for wave in range(0, n, CONCURRENCY):
        count = min(CONCURRENCY, n - wave)
        if mode == "sse":
            jobs = [open_stream(port, sid, held) for _ in range(count)]
        else:
            jobs = [open_keepalive(port, held) for _ in range(count)]
        await asyncio.wait_for(asyncio.gather(*jobs), DEADLINE)
        if time.monotonic() - started > DEADLINE:
            raise RuntimeError(f"only {len(held)} connections within {DEADLINE} s")
    opened = time.monotonic() - started
    await asyncio.sleep(SETTLE)
    after = rss_kib(pid)
    per = (after - before) / max(len(held), 1)
    print(
        f"mode={mode} conns={len(held)} open_s={opened:.1f} rss_before_kib={before} "
        f"rss_after_kib={after} per_conn_kib={per:.1f}",
        flush=True,
    )
    for w in held:
        w.close()


if __name__ == "__main__":
    mode, port, pid, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    if mode not in ("sse", "keepalive"):
        sys.exit("mode: sse or keepalive")
    asyncio.run(main(mode, port, pid, n))
