#!/usr/bin/env bash
# Reload under load: wrk drives tools/call through mcp-edge while the config is rewritten and
# reloaded every RELOAD_MS (alternating the pool's backends between two mock servers), and an
# SSE client keeps streams open. Prints the request count, socket errors, non-2xx responses
# and reloads done. Zero errors and zero non-2xx is the pass mark. Loopback only, bounded.
#   DURATION=20 RELOAD_MS=200 loadtest/reload.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-20}
RELOAD_MS=${RELOAD_MS:-200}
# shellcheck source=loadtest/lib.sh
source loadtest/lib.sh

A=$(free_port); B=$(free_port); EDGE=$(free_port); ADMIN=$(free_port)
"$BIN/mcp-edge-mock" --listen "127.0.0.1:$A" --name a >/dev/null & pids+=($!)
"$BIN/mcp-edge-mock" --listen "127.0.0.1:$B" --name b >/dev/null & pids+=($!)
write_config() { # backends...
  local list; list=$(printf '"%s",' "$@"); list=${list%,}
  cat >"$work/edge.toml.tmp" <<TOML
[proxy]
listen = ["127.0.0.1:$EDGE"]
threads = 2
pid_file = "$work/pid"
upgrade_sock = "$work/upgrade.sock"
[admin]
listen = "127.0.0.1:$ADMIN"
[log]
level = "warn"
[[pool]]
name = "main"
backends = [$list]
path = "/mcp"
[pool.health]
check = "mcp"
interval = "1s"
[[route]]
name = "mcp"
path = "/mcp"
pool = "main"
[[route.rule]]
tool = "deploy_*"
pool = "main"
TOML
  mv "$work/edge.toml.tmp" "$work/edge.toml"
}
write_config "127.0.0.1:$A"
"$BIN/mcp-edge" --config "$work/edge.toml" 2>"$work/edge.log" & pids+=($!)
wait_http "http://127.0.0.1:$ADMIN/readyz"

# SSE streams in a loop: each must end with its result event.
(
  ok=0; bad=0; end=$((SECONDS + DURATION))
  while ((SECONDS < end)); do
    out=$(curl -sN -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
      "http://127.0.0.1:$EDGE/mcp" -d '{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"slow","arguments":{"steps":3,"delay_ms":100}}}')
    if grep -q '"result"' <<<"$out" && [ "$(grep -c notifications/progress <<<"$out")" = 3 ]; then ok=$((ok+1)); else bad=$((bad+1)); fi
  done
  echo "SSE streams: $ok complete, $bad broken" >"$work/sse.txt"
) & sse=$!

(
  n=0; end=$((SECONDS + DURATION))
  while ((SECONDS < end)); do
    if ((n % 2)); then write_config "127.0.0.1:$A"; else write_config "127.0.0.1:$A" "127.0.0.1:$B"; fi
    curl -sf -X POST "http://127.0.0.1:$ADMIN/reload" >/dev/null || echo "reload failed" >&2
    n=$((n+1)); sleep "$(python3 -c "print($RELOAD_MS/1000)")"
  done
  echo "$n" >"$work/reloads.txt"
) & reloader=$!

BODY_FILE=loadtest/body.json wrk -t2 -c32 -d"${DURATION}s" -s loadtest/post.lua "http://127.0.0.1:$EDGE/mcp" | grep '^RESULT' | tee "$work/wrk.txt"
wait "$reloader" "$sse"
echo "reloads: $(cat "$work/reloads.txt"), generation now $(curl -s "http://127.0.0.1:$ADMIN/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["config"]["generation"])')"
cat "$work/sse.txt"
grep -q 'errors=0 non2xx=0' "$work/wrk.txt" && ! grep -q broken <(grep -v ' 0 broken' "$work/sse.txt") && echo "PASS: no failed request, no broken stream" || { echo "FAIL"; exit 1; }
