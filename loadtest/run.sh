#!/usr/bin/env bash
# Load test: the mock MCP server direct vs. through mcp-edge (one worker thread, tools/call
# routed by a tool rule, so the body is pre-read and classified), with wrk (closed loop, max
# throughput) and, when installed, oha (open loop at a fixed rate). Prints req/s, p50/p99 and
# the ratio. Loopback only; bounded by DURATION. Load generator pinned to CPU 0, servers to 1.
#   DURATION=10 CONNS=64 RATE=5000 loadtest/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
RATE=${RATE:-5000}
# shellcheck source=loadtest/lib.sh
source loadtest/lib.sh
OHA=${OHA:-$(command -v oha || echo "$HOME/.cargo/bin/oha")}


MOCK=$(free_port); EDGE=$(free_port); ADMIN=$(free_port)
taskset -c 1 "$BIN/mcp-edge-mock" --listen "127.0.0.1:$MOCK" --name load --threads 1 >/dev/null &
pids+=($!)
cat >"$work/edge.toml" <<TOML
[proxy]
listen = ["127.0.0.1:$EDGE"]
threads = 1
pid_file = "$work/pid"
upgrade_sock = "$work/upgrade.sock"
[admin]
listen = "127.0.0.1:$ADMIN"
[log]
level = "warn"
[[pool]]
name = "main"
backends = ["127.0.0.1:$MOCK"]
[[pool]]
name = "deploy"
backends = ["127.0.0.1:$MOCK"]
[[route]]
name = "mcp"
path = "/mcp"
pool = "main"
[[route.rule]]
tool = "deploy_*"
pool = "deploy"
TOML
taskset -c 1 "$BIN/mcp-edge" --config "$work/edge.toml" 2>"$work/edge.log" &
pids+=($!)
wait_http "http://127.0.0.1:$ADMIN/readyz"

declare -A RPS P50 P99
run_wrk() { # name port
  BODY_FILE=loadtest/body.json taskset -c 0 wrk -t2 -c"$CONNS" -d2s -s loadtest/post.lua "http://127.0.0.1:$2/mcp" >/dev/null
  local line
  line=$(BODY_FILE=loadtest/body.json taskset -c 0 wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s loadtest/post.lua "http://127.0.0.1:$2/mcp" | grep '^RESULT')
  echo "wrk $1: $line"
  RPS[$1]=$(sed -E 's/.*rps=([0-9]+).*/\1/' <<<"$line")
  P50[$1]=$(sed -E 's/.*p50_us=([0-9]+).*/\1/' <<<"$line")
  P99[$1]=$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<<"$line")
}
run_wrk direct "$MOCK"
run_wrk mcp-edge "$EDGE"

printf '\n| wrk -c%s, %ss | req/s | p50 µs | p99 µs |\n|---|---|---|---|\n' "$CONNS" "$DURATION"
for t in direct mcp-edge; do printf '| %s | %s | %s | %s |\n' "$t" "${RPS[$t]}" "${P50[$t]}" "${P99[$t]}"; done
python3 -c "import sys; d,e=map(float,sys.argv[1:3]); print(f'\nmcp-edge / direct throughput: {e/d:.2f}x')" "${RPS[direct]}" "${RPS[mcp-edge]}"

if [[ -x $OHA ]] && ((RATE > 0)); then
  printf '\n| oha -q %s, %ss | req/s | p50 ms | p99 ms |\n|---|---|---|---|\n' "$RATE" "$DURATION"
  for t in "direct:$MOCK" "mcp-edge:$EDGE"; do
    out=$(taskset -c 0 "$OHA" -q "$RATE" -z "${DURATION}s" -c "$CONNS" --latency-correction --no-tui --output-format json \
      -m POST -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
      -D loadtest/body.json "http://127.0.0.1:${t#*:}/mcp")
    python3 -c 'import json,sys; r=json.loads(sys.argv[2]); rps=r["summary"]["requestsPerSec"]; p=r["latencyPercentiles"]; print("| %s | %.0f | %.2f | %.2f |" % (sys.argv[1], rps, p["p50"]*1000, p["p99"]*1000))' "${t%%:*}" "$out"
  done
else
  echo "(oha not installed: skipping the fixed-rate run; cargo install oha)"
fi
