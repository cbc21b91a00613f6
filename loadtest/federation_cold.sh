#!/usr/bin/env bash
# A federated route's cold fan-out (issue "One MCP endpoint over many servers": the first merged
# tools/list of a fresh process within 1 ms of the slowest member's own list). Two
# mcp-edge-mock members: a lists its 5 tools 2 per page (3 pages, the slowest), b in one page.
# Each of RUNS rounds and each era starts a fresh mcp-edge, then times, on new connections from
# one Python client (warmed by one walk first): member a's whole list asked directly as a client
# of the era must (legacy: the handshake, then its 3 pages; 2026-07-28: the 3 pages), one
# request after another on one keep-alive connection; then the proxy's first merged list in the
# same era (the proxy does the same for both members). Prints the medians and their difference.
#   cargo build --release --bins && RUNS=20 loadtest/federation_cold.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
# shellcheck source=loadtest/lib.sh
source loadtest/lib.sh

A=$(free_port); B=$(free_port)
"$BIN/mcp-edge-mock" --listen "127.0.0.1:$A" --name a --page-size 2 >/dev/null & pids+=($!)
"$BIN/mcp-edge-mock" --listen "127.0.0.1:$B" --name b >/dev/null & pids+=($!)

cat >"$work/time.py" <<'PY'
import http.client, json, sys, time
MODERN = {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"}
def post(conn, path, body, extra={}):
    h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream", **extra}
    conn.request("POST", path, json.dumps(body), h)
    r = conn.getresponse(); data = r.read()
    assert r.status in (200, 202), (r.status, data)
    return json.loads(data)["result"] if data else None
def walk(port, modern):  # a member's list as a client of the era must ask for it
    conn, cursor, tools, t = http.client.HTTPConnection("127.0.0.1", port), None, [], time.perf_counter()
    if not modern:  # the legacy handshake comes first
        post(conn, "/mcp", {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
        post(conn, "/mcp", {"jsonrpc": "2.0", "method": "notifications/initialized"})
    while True:
        params = {"cursor": cursor} if cursor else {}
        page = post(conn, "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": params}, MODERN if modern else {})
        tools += page["tools"]; cursor = page.get("nextCursor")
        if not cursor: return time.perf_counter() - t, len(tools)
def merged(port, modern):
    conn, t = http.client.HTTPConnection("127.0.0.1", port), time.perf_counter()
    result = post(conn, "/fed", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, MODERN if modern else {})
    return time.perf_counter() - t, len(result["tools"])
modern = sys.argv[3] == "modern"
walk(int(sys.argv[1]), modern)  # warms the client: its first request pays for imports and first use
direct, n = walk(int(sys.argv[1]), modern); assert n == 5, n
fed, n = merged(int(sys.argv[2]), modern); assert n == 10, n
print(f"{direct * 1000:.3f} {fed * 1000:.3f}")
PY

: >"$work/legacy"; : >"$work/modern"
for _ in $(seq "$RUNS"); do
  for era in legacy modern; do
    EDGE=$(free_port); ADMIN=$(free_port)
    cat >"$work/edge.toml" <<TOML
[proxy]
listen = ["127.0.0.1:$EDGE"]
threads = 1
grace_period = "0s"
pid_file = "$work/pid"
upgrade_sock = "$work/upgrade.sock"
[admin]
listen = "127.0.0.1:$ADMIN"
[log]
access = false
[[pool]]
name = "a"
backends = ["127.0.0.1:$A"]
path = "/mcp"
[pool.health]
check = "none"
[[pool]]
name = "b"
backends = ["127.0.0.1:$B"]
path = "/mcp"
[pool.health]
check = "none"
[[route]]
name = "fed"
path = "/fed"
[[route.member]]
pool = "a"
prefix = "a"
[[route.member]]
pool = "b"
prefix = "b"
TOML
    "$BIN/mcp-edge" --config "$work/edge.toml" 2>"$work/edge.log" & edge=$!
    wait_http "http://127.0.0.1:$ADMIN/readyz"
    python3 "$work/time.py" "$A" "$EDGE" "$era" >>"$work/$era"
    kill "$edge"; wait "$edge" 2>/dev/null || true
  done
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for era in legacy modern; do
  direct=$(awk '{print $1}' "$work/$era" | median); fed=$(awk '{print $2}' "$work/$era" | median)
  awk -v e="$era" -v d="$direct" -v f="$fed" -v n="$RUNS" 'BEGIN {printf "%-6s cold merged list: member a directly %.3f ms, federated first list %.3f ms, +%.3f ms (medians of %d fresh processes)\n", e, d, f, f - d, n}'
done
