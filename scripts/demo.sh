#!/usr/bin/env bash
# `make demo`: three sample MCP servers (mcp-edge-mock) on loopback, mcp-edge in front of them
# with conf/demo.toml, and a list of requests to try. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=target/release
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# tools-a and tools-b issue sessions (legacy era); deploy is session-less, like a modern server.
for spec in "9001 tools-a --stateful" "9002 tools-b --stateful" "9003 deploy"; do
  set -- $spec
  "$BIN/mcp-edge-mock" --listen "127.0.0.1:$1" --name "$2" ${3:-} >/dev/null &
  pids+=($!)
done
"$BIN/mcp-edge" --config conf/demo.toml &
pids+=($!)

deadline=$((SECONDS + 30))
until curl -sf http://127.0.0.1:9090/readyz >/dev/null; do
  ((SECONDS < deadline)) || { echo "demo: mcp-edge did not become ready in 30s" >&2; exit 1; }
  sleep 0.2
done

cat <<'TXT'

mcp-edge demo is up: proxy http://127.0.0.1:8080/mcp, admin http://127.0.0.1:9090
Backends: tools-a :9001 and tools-b :9002 (pool "tools", sessions), deploy :9003 (pool "deploy", tools deploy_*, session-less)

Try:
  H='-H content-type:application/json -H accept:application/json,text/event-stream'
  # initialize: the backend's session id comes back wrapped in an encrypted token (any replica with the key routes it)
  curl -si $H localhost:8080/mcp -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
  SID=<the mcp-session-id from above>
  curl -s $H -H "mcp-session-id: $SID" localhost:8080/mcp -d '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami"}}'
  # a session-less modern-era call, routed by tool rule to the deploy pool
  curl -s $H -H 'mcp-protocol-version: 2026-07-28' -H 'mcp-method: tools/call' -H 'mcp-name: deploy_app' \
       localhost:8080/mcp -d '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"deploy_app"}}'
  # a header that disagrees with the body is refused at the edge (-32020), never forwarded
  curl -s $H -H 'mcp-protocol-version: 2026-07-28' -H 'mcp-method: tools/call' -H 'mcp-name: echo' \
       localhost:8080/mcp -d '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"deploy_app"}}'
  # bad input gets a JSON-RPC error and never reaches a backend; so does a foreign Host (DNS rebinding)
  curl -s $H localhost:8080/mcp -d '{not json'
  curl -s $H -H 'host: evil.example' localhost:8080/mcp -d '{"jsonrpc":"2.0","id":5,"method":"ping"}'
  curl -s localhost:9090/status ; curl -s localhost:9090/metrics | grep mcp_edge_requests_total

Ctrl-C to stop.
TXT
wait
