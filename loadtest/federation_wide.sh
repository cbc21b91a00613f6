#!/usr/bin/env bash
# The issue's catalog figure (issue "One MCP endpoint over many servers"): a merged tools/list
# of 3 members x 50 tools, served by mcp-edge (one worker thread) from its warm catalog, against
# the minimal Pingora 0.9.1 proxy (../shared/bench/pingora-baseline, one worker thread)
# proxying the same request to one mcp-edge-mock offering 150 tools (the same answer, but
# asked of a backend every time). Target: at least 1.5x. wrk drives each side for DURATION s,
# ROUNDS rounds interleaved, medians; wrk on CPU 0, proxies and backends on CPU 1.
#   cargo build --release --bins
#   PINGORA_BIN=…/pingora-baseline ROUNDS=3 DURATION=10 loadtest/federation_wide.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
PINGORA_BIN=${PINGORA_BIN:-$HOME/peers/pingora-baseline/target/release/pingora-baseline}
[[ -x $PINGORA_BIN ]] || { echo "no Pingora baseline at $PINGORA_BIN (see ../shared/bench/setup.sh; set PINGORA_BIN)" >&2; exit 1; }
# shellcheck source=loadtest/lib.sh
source loadtest/lib.sh

ports=(); for _ in 1 2 3 4; do ports+=("$(free_port)"); done
for i in 0 1 2; do
  taskset -c 1 "$BIN/mcp-edge-mock" --listen "127.0.0.1:${ports[$i]}" --name "m$i" --extra-tools 45 >/dev/null & pids+=($!)
done
WIDE=${ports[3]}
taskset -c 1 "$BIN/mcp-edge-mock" --listen "127.0.0.1:$WIDE" --name wide --extra-tools 145 >/dev/null & pids+=($!)
EDGE=$(free_port); ADMIN=$(free_port); BASE=$(free_port)
{
  printf '[proxy]\nlisten = ["127.0.0.1:%s"]\nthreads = 1\npid_file = "%s/pid"\nupgrade_sock = "%s/upgrade.sock"\n' "$EDGE" "$work" "$work"
  printf '[admin]\nlisten = "127.0.0.1:%s"\n[log]\naccess = false\n' "$ADMIN"
  for i in 0 1 2; do
    printf '[[pool]]\nname = "m%s"\nbackends = ["127.0.0.1:%s"]\npath = "/mcp"\n' "$i" "${ports[$i]}"
  done
  printf '[[route]]\nname = "fed"\npath = "/mcp"\ncatalog_ttl = "1h"\n'
  for i in 0 1 2; do printf '[[route.member]]\npool = "m%s"\nprefix = "m%s"\n' "$i" "$i"; done
} >"$work/edge.toml"
taskset -c 1 "$BIN/mcp-edge" --config "$work/edge.toml" 2>"$work/edge.log" & pids+=($!)
printf -- '---\nversion: 1\nthreads: 1\npid_file: %s/base.pid\nupgrade_sock: %s/base.sock\n' "$work" "$work" >"$work/base.yaml"
LISTEN="127.0.0.1:$BASE" UPSTREAM="127.0.0.1:$WIDE" taskset -c 1 "$PINGORA_BIN" -c "$work/base.yaml" >/dev/null 2>&1 & pids+=($!)
wait_http "http://127.0.0.1:$ADMIN/readyz"

cat >"$work/list.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
LUA
count() { curl -sf -X POST -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
  --data-binary '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' "$1" | grep -o '"name":"[^"]*"' | wc -l; }
for _ in $(seq 100); do [[ $(count "http://127.0.0.1:$BASE/mcp" 2>/dev/null || echo 0) == 150 ]] && break; sleep 0.05; done
# Warm the catalog; both sides answer 150 tools.
[[ $(count "http://127.0.0.1:$EDGE/mcp") == 150 && $(count "http://127.0.0.1:$BASE/mcp") == 150 ]] \
  || { echo "a side does not list 150 tools" >&2; exit 1; }
bytes() { curl -sf -X POST -H 'Content-Type: application/json' --data-binary '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' "$1" | wc -c; }
echo "answer bytes: mcp-edge $(bytes "http://127.0.0.1:$EDGE/mcp"), baseline $(bytes "http://127.0.0.1:$BASE/mcp")"

rate() { taskset -c 0 wrk -t1 -c32 -d"${DURATION}s" -s "$work/list.lua" "http://127.0.0.1:$1/mcp" | awk '/Requests\/sec/ {print int($2)}'; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: >"$work/edge"; : >"$work/base"
for _ in $(seq "$ROUNDS"); do
  rate "$BASE" >>"$work/base"
  rate "$EDGE" >>"$work/edge"
done
base=$(median <"$work/base"); edge=$(median <"$work/edge")
awk -v b="$base" -v e="$edge" 'BEGIN {printf "merged tools/list (3 x 50)  pingora baseline %8d req/s   mcp-edge warm catalog %8d req/s   %.2fx (target 1.5x)\n", b, e, e / b}'
