#!/usr/bin/env bash
# What federation costs (issue "One MCP endpoint over many servers"): one mcp-edge (one worker
# thread) with a plain route (/plain, pool a) and a federated route (/fed, members a and b),
# over two mcp-edge-mock backends; wrk drives each case for DURATION s, ROUNDS rounds
# interleaved, medians. Cases: tools/call `echo` on /plain against `a_echo` on /fed (the call
# is renamed and routed by the merged catalog, its JSON answer held to offer resource URIs;
# target at least 0.9x), `echo` on /own (prefix_mode never: nothing to offer, the answer
# passed with its length), `echo` on /tplain against `t_echo` on /tools (member t answers
# "method not found" for resources, so it reads none: its URIs are not offered and the answer
# is passed with its length), the same with the answer
# as an event stream (`slow`: a progress event, then the answer), and tools/list proxied
# on /plain against the merged list of 10 tools served from the warm catalog on /fed, and the
# `echo` call on /plain against `a_echo` answered from the result cache on /cached. wrk on
# CPU 0, proxy and backends on CPU 1.
#   cargo build --release --bins && ROUNDS=3 DURATION=10 loadtest/federation.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
# shellcheck source=loadtest/lib.sh
source loadtest/lib.sh

A=$(free_port); B=$(free_port); T=$(free_port); EDGE=$(free_port); ADMIN=$(free_port)
taskset -c 1 "$BIN/mcp-edge-mock" --listen "127.0.0.1:$A" --name a >/dev/null & pids+=($!)
taskset -c 1 "$BIN/mcp-edge-mock" --listen "127.0.0.1:$B" --name b >/dev/null & pids+=($!)
taskset -c 1 "$BIN/mcp-edge-mock" --listen "127.0.0.1:$T" --name t --tools-only >/dev/null & pids+=($!)
cat >"$work/edge.toml" <<TOML
[proxy]
listen = ["127.0.0.1:$EDGE"]
threads = 1
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
check = "tcp"
[[pool]]
name = "b"
backends = ["127.0.0.1:$B"]
path = "/mcp"
[pool.health]
check = "tcp"
[[pool]]
name = "t"
backends = ["127.0.0.1:$T"]
path = "/mcp"
[pool.health]
check = "tcp"
[[route]]
name = "plain"
path = "/plain"
pool = "a"
[[route]]
name = "tplain"
path = "/tplain"
pool = "t"
[[route]]
name = "tools"
path = "/tools"
catalog_ttl = "1h"
[[route.member]]
pool = "t"
prefix = "t"
[[route.member]]
pool = "b"
prefix = "b"
[[route]]
name = "fed"
path = "/fed"
catalog_ttl = "1h"
[[route.member]]
pool = "a"
prefix = "a"
[[route.member]]
pool = "b"
prefix = "b"
[[route]]
name = "cached"
path = "/cached"
catalog_ttl = "1h"
[[route.member]]
pool = "a"
prefix = "a"
[[route.member]]
pool = "b"
prefix = "b"
[route.result_cache]
tools = ["a_echo"]
ttl = "1h"
[[route]]
name = "own"
path = "/own"
catalog_ttl = "1h"
prefix_mode = "never"
[[route.member]]
pool = "a"
prefix = "a"
TOML
taskset -c 1 "$BIN/mcp-edge" --config "$work/edge.toml" 2>"$work/edge.log" & pids+=($!)
wait_http "http://127.0.0.1:$ADMIN/readyz"

lua() { # $1 file, $2 body
  cat >"$1" <<LUA
wrk.method = "POST"
wrk.body = '$2'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
LUA
}
lua "$work/call-plain.lua" '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}'
lua "$work/call-fed.lua" '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a_echo","arguments":{"text":"hello"}}}'
lua "$work/call-tools.lua" '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t_echo","arguments":{"text":"hello"}}}'
lua "$work/list.lua" '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
# A call answered as an event stream (a progress event, then the answer): every event of a
# federated call's stream is read (ids of requests sealed, foreign answers dropped, URIs offered).
lua "$work/sse-plain.lua" '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"slow","arguments":{"steps":1,"delay_ms":0},"_meta":{"progressToken":"p"}}}'
lua "$work/sse-fed.lua" '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a_slow","arguments":{"steps":1,"delay_ms":0},"_meta":{"progressToken":"p"}}}'
# Warm the catalog, and check every case answers what it should.
curl -sf -X POST -H 'Content-Type: application/json' --data-binary @- "http://127.0.0.1:$EDGE/fed" <<<'{"jsonrpc":"2.0","id":1,"method":"tools/list"}' | grep -q '"b_deploy_app"'
curl -sf -X POST -H 'Content-Type: application/json' --data-binary @- "http://127.0.0.1:$EDGE/fed" <<<'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a_echo","arguments":{"text":"hello"}}}' | grep -q hello
curl -sf -X POST -H 'Content-Type: application/json' --data-binary @- "http://127.0.0.1:$EDGE/own" <<<'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}' | grep -q hello
# A client lists resources on /tools first: t's "method not found" is what tells the route.
curl -sf -X POST -H 'Content-Type: application/json' --data-binary @- "http://127.0.0.1:$EDGE/tools" <<<'{"jsonrpc":"2.0","id":1,"method":"resources/list"}' | grep -q '"b+mock://b/readme"'
head=$(curl -sf -D - -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary @- "http://127.0.0.1:$EDGE/tools" <<<'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t_echo","arguments":{"text":"hello"}}}')
grep -qi '^content-length' <<<"$head"
for _ in 1 2; do
  curl -sf -X POST -H 'Content-Type: application/json' --data-binary @- "http://127.0.0.1:$EDGE/cached" <<<'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a_echo","arguments":{"text":"hello"}}}' | grep -q hello
done
curl -sf "http://127.0.0.1:$ADMIN/metrics" | grep -q 'federation_result_cache_lookups_total{result="hit",route="cached"} 1'
curl -sf -X POST -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' --data-binary @- "http://127.0.0.1:$EDGE/fed" <<<'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a_slow","arguments":{"steps":1,"delay_ms":0},"_meta":{"progressToken":"p"}}}' | grep -q 'slow done'

rate() { # $1 path, $2 script: requests/s
  taskset -c 0 wrk -t1 -c32 -d"${DURATION}s" -s "$2" "http://127.0.0.1:$EDGE$1" | awk '/Requests\/sec/ {print int($2)}'
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for case in call own tools sse list cached; do
  : >"$work/$case-plain" ; : >"$work/$case-fed"
done
for _ in $(seq "$ROUNDS"); do
  rate /plain "$work/call-plain.lua" >>"$work/call-plain"
  rate /fed "$work/call-fed.lua" >>"$work/call-fed"
  rate /plain "$work/call-plain.lua" >>"$work/own-plain"
  rate /own "$work/call-plain.lua" >>"$work/own-fed"
  rate /tplain "$work/call-plain.lua" >>"$work/tools-plain"
  rate /tools "$work/call-tools.lua" >>"$work/tools-fed"
  rate /plain "$work/sse-plain.lua" >>"$work/sse-plain"
  rate /fed "$work/sse-fed.lua" >>"$work/sse-fed"
  rate /plain "$work/list.lua" >>"$work/list-plain"
  rate /fed "$work/list.lua" >>"$work/list-fed"
  rate /plain "$work/call-plain.lua" >>"$work/cached-plain"
  rate /cached "$work/call-fed.lua" >>"$work/cached-fed"
done
for case in call own tools sse list cached; do
  plain=$(median <"$work/$case-plain"); fed=$(median <"$work/$case-fed")
  awk -v c="$case" -v p="$plain" -v f="$fed" 'BEGIN {printf "%-5s plain %8d req/s   federated %8d req/s   %.2fx\n", c, p, f, f / p}'
done
