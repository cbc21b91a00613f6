#!/usr/bin/env bash
# A federated route's cold fan-out (issue "One MCP endpoint over many servers": the first merged
# tools/list of a fresh process within 1 ms of the slowest member's own list). Two
# mcp-edge-mock members: a lists its 5 tools 2 per page (3 pages, the slowest), b in one page.
# Each of RUNS rounds starts a fresh mcp-edge, then times, on new connections from one Python
# client (warmed by one walk first): member a's whole list asked directly (its 3 pages, one
# after another, on one keep-alive connection), then the proxy's first merged list (every page of both members).
# Prints the medians and their difference.
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
def post(conn, path, body):
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
    r = conn.getresponse(); data = r.read()
    assert r.status == 200, (r.status, data)
    return json.loads(data)["result"]
def walk(port):  # every page of a member, as the proxy asks for them
    conn, cursor, tools, t = http.client.HTTPConnection("127.0.0.1", port), None, [], time.perf_counter()
    while True:
        params = {"cursor": cursor} if cursor else {}
        page = post(conn, "/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": params})
        tools += page["tools"]; cursor = page.get("nextCursor")
        if not cursor: return time.perf_counter() - t, len(tools)
def merged(port):
    conn, t = http.client.HTTPConnection("127.0.0.1", port), time.perf_counter()
    result = post(conn, "/fed", {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    return time.perf_counter() - t, len(result["tools"])
walk(int(sys.argv[1]))  # warms the client: its first request pays for imports and first use
direct, n = walk(int(sys.argv[1])); assert n == 5, n
fed, n = merged(int(sys.argv[2])); assert n == 10, n
print(f"{direct * 1000:.3f} {fed * 1000:.3f}")
PY

: >"$work/times"
for _ in $(seq "$RUNS"); do
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
  python3 "$work/time.py" "$A" "$EDGE" >>"$work/times"
  kill "$edge"; wait "$edge" 2>/dev/null || true
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
direct=$(awk '{print $1}' "$work/times" | median); fed=$(awk '{print $2}' "$work/times" | median)
awk -v d="$direct" -v f="$fed" -v n="$RUNS" 'BEGIN {printf "cold merged list: member a directly %.3f ms, federated first list %.3f ms, +%.3f ms (medians of %d fresh processes)\n", d, f, f - d, n}'
