#!/usr/bin/env bash
# A Redis-backed limit under load: wrk drives tools/call through mcp-edge, first with the limit
# counted locally, then in Redis (a real redis-server), then with Redis SIGKILLed KILL_AT
# seconds into the run. The limit is high enough never to refuse, so every non-2xx is a request
# the limiter lost. Prints wrk's totals per phase and the Redis fallback counters.
#   DURATION=10 KILL_AT=3 loadtest/redis.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
KILL_AT=${KILL_AT:-3}
command -v redis-server >/dev/null || { echo "redis-server not found; run scripts/deps.sh" >&2; exit 1; }
# shellcheck source=loadtest/lib.sh
source loadtest/lib.sh

UP=$(free_port); REDIS=$(free_port)
"$BIN/mcp-edge-mock" --listen "127.0.0.1:$UP" --name up >/dev/null & pids+=($!)
redis-server --port "$REDIS" --bind 127.0.0.1 --save "" --appendonly no >/dev/null & redis_pid=$!; pids+=($redis_pid)

# run_phase NAME BACKEND [KILL]: starts mcp-edge with the limit on BACKEND, runs wrk, stops it.
run_phase() {
  local name=$1 backend=$2 kill=${3:-} edge admin pid
  edge=$(free_port); admin=$(free_port)
  cat >"$work/$name.toml" <<TOML
[proxy]
listen = ["127.0.0.1:$edge"]
threads = 1
pid_file = "$work/$name.pid"
upgrade_sock = "$work/$name.sock"
grace_period = "1s"
shutdown_timeout = "1s"
[admin]
listen = "127.0.0.1:$admin"
[log]
access = false
[redis]
url = "redis://127.0.0.1:$REDIS/0"
[[pool]]
name = "main"
backends = ["127.0.0.1:$UP"]
path = "/mcp"
[[limit]]
name = "per-client"
key = ["client_ip"]
rate = "10000000/s"
backend = "$backend"
on_redis_error = "local"
[[route]]
name = "mcp"
path = "/mcp"
pool = "main"
limits = ["per-client"]
TOML
  [ "$backend" = local ] && sed -i '/^on_redis_error/d' "$work/$name.toml"
  "$BIN/mcp-edge" --config "$work/$name.toml" 2>"$work/$name.log" & pid=$!
  wait_http "http://127.0.0.1:$admin/readyz"
  [ -n "$kill" ] && ( sleep "$KILL_AT"; kill -KILL "$redis_pid" ) &
  printf '%-22s ' "$name:"
  BODY_FILE=loadtest/body.json wrk -t2 -c32 -d"${DURATION}s" -s loadtest/post.lua "http://127.0.0.1:$edge/mcp" | grep '^RESULT'
  curl -s "http://127.0.0.1:$admin/metrics" | grep -E '^mcp_edge_redis_limit_(errors|fallbacks)_total' | sed 's/^/    /' || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

for _ in $(seq 100); do redis-cli -p "$REDIS" ping >/dev/null 2>&1 && break; sleep 0.05; done
run_phase local local
run_phase redis redis
run_phase redis-killed redis kill
