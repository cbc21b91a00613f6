#!/usr/bin/env bash
# A backend killed under load: wrk drives tools/call through mcp-edge over two mock backends;
# KILL_AT seconds in, one backend is SIGKILLed. Prints wrk's totals (socket errors, non-2xx)
# and, from a probe sending one request every 20 ms, how many requests failed and how long after
# the kill the last failure was seen (time to recover). Loopback only, bounded by DURATION.
# HANG=1 SIGSTOPs the backend instead: it still accepts connections but never answers, and
# only the pool's first_byte_timeout (1s here) and its circuit breaker get traffic off it.
#   DURATION=20 KILL_AT=5 loadtest/failover.sh
#   HANG=1 loadtest/failover.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-20}
KILL_AT=${KILL_AT:-5}
SIGNAL=KILL; [ "${HANG:-0}" = 1 ] && SIGNAL=STOP
# shellcheck source=loadtest/lib.sh
source loadtest/lib.sh

A=$(free_port); B=$(free_port); EDGE=$(free_port); ADMIN=$(free_port)
"$BIN/mcp-edge-mock" --listen "127.0.0.1:$A" --name a >/dev/null & victim=$!; pids+=($victim)
"$BIN/mcp-edge-mock" --listen "127.0.0.1:$B" --name b >/dev/null & pids+=($!)
cat >"$work/edge.toml" <<TOML
[proxy]
listen = ["127.0.0.1:$EDGE"]
threads = 2
pid_file = "$work/pid"
upgrade_sock = "$work/upgrade.sock"
[admin]
listen = "127.0.0.1:$ADMIN"
[log]
access = false
[[pool]]
name = "main"
backends = ["127.0.0.1:$A", "127.0.0.1:$B"]
path = "/mcp"
first_byte_timeout = "1s"
[pool.health]
check = "mcp"
interval = "1s"
timeout = "500ms"
[pool.breaker]
failures = 3
cooldown = "5s"
[[route]]
name = "mcp"
path = "/mcp"
pool = "main"
TOML
"$BIN/mcp-edge" --config "$work/edge.toml" 2>"$work/edge.log" & pids+=($!)
wait_http "http://127.0.0.1:$ADMIN/readyz"

python3 - "$EDGE" "$DURATION" "$KILL_AT" >"$work/probe.txt" <<'PY' &
import http.client, sys, time
port, duration, kill_at = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
body = b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}'
start = time.monotonic(); sent = failed = 0; last_fail = None
while time.monotonic() - start < duration:
    t = time.monotonic() - start
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("POST", "/mcp", body, {"content-type": "application/json", "accept": "application/json, text/event-stream"})
        ok = c.getresponse().status == 200
        c.close()
    except Exception:
        ok = False
    sent += 1
    if not ok:
        failed += 1; last_fail = t
    time.sleep(0.02)
rec = "n/a" if last_fail is None else f"{max(0.0, last_fail - kill_at) * 1000:.0f} ms"
print(f"probe: {sent} requests, {failed} failed, last failure {rec} after the kill")
PY
probe=$!
( sleep "$KILL_AT"; kill -"$SIGNAL" "$victim" ) &
BODY_FILE=loadtest/body.json wrk -t2 -c32 -d"${DURATION}s" -s loadtest/post.lua "http://127.0.0.1:$EDGE/mcp" | grep '^RESULT'
wait "$probe"
kill -CONT "$victim" 2>/dev/null || true   # a stopped process would ignore the cleanup's TERM
cat "$work/probe.txt"
curl -s "http://127.0.0.1:$ADMIN/metrics" | grep -E '^mcp_edge_(upstream_ejections_total|upstream_retries_total|rejections_total)' || true
