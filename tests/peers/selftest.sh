#!/usr/bin/env bash
# Checks the peers against each other directly (no proxy): every server on a free port,
# every client scenario against it. Run scripts/peers.sh first. Ends with "N passed, N failed".
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck disable=SC1091
source "$ROOT/.peers/env"
PY2C="$PEERS_PY2_CLIENT" PY1C="$PEERS_PY1_CLIENT" TSC="$PEERS_TS_CLIENT"

pids=()
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
start() { # var command... : start a server on a free port, store the port in $var
  local var=$1 port; shift
  port=$(free_port)
  $* --port "$port" >"/tmp/peers-selftest-$var.log" 2>&1 &
  pids+=($!)
  printf -v "$var" %s "$port"
}
wait_port() { for _ in $(seq 200); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done; echo "port $1 down"; }

pass=0 fail=0
check() { # label python-condition-on-r command... (command must exit 0 and print JSON last)
  local label=$1 cond=$2 out; shift 2
  out=$("$@" 2>/tmp/peers-selftest-err.log | tail -1)
  if [[ $? == 0 ]] && python3 -c "import json,sys; r=json.loads(sys.argv[1]); sys.exit(0 if ($cond) else 1)" "$out" 2>/dev/null; then
    pass=$((pass + 1)); echo "ok   $label"
  else
    fail=$((fail + 1)); echo "FAIL $label: ${out:0:400}"
  fi
}
check_fails() { # label command... (command must exit non-zero with ok=false)
  local label=$1 out; shift
  if out=$("$@" 2>/dev/null | tail -1); then fail=$((fail + 1)); echo "FAIL $label: expected failure: ${out:0:300}"
  else pass=$((pass + 1)); echo "ok   $label (fails as expected: ${out:0:120})"; fi
}

start P2 "$PEERS_PY2_SERVER --name A"
start P2SJ "$PEERS_PY2_SERVER --name SJ --stateless --json"
start P1 "$PEERS_PY1_SERVER --name B --sse"
start P1S "$PEERS_PY1_SERVER --name BS --stateless"
start EVH "$PEERS_EVERYTHING --mode streamableHttp"
start EVS "$PEERS_EVERYTHING --mode sse"
for p in $P2 $P2SJ $P1 $P1S $EVH $EVS; do wait_port "$p"; done
U() { echo "http://127.0.0.1:$1/$2"; }

# progress: all steps seen, first one well before the result, ~0.5 s apart
PROG='len(r["progress"]) == 3 and r["progress"][0]["t"] < r["result_t"] - 1.0 and 0.3 < r["progress"][1]["t"] - r["progress"][0]["t"] < 0.9'
# server-everything's last progress goes out together with the result
EVPROG='len(r["progress"]) >= 2 and r["progress"][0]["t"] < r["result_t"] - 0.7'

for c in PY2C PY1C TSC; do
  cl=${!c}
  check "$c basic py2" 'r["pages"] == 3 and r["tools_count"] == 66 and r["server"] == "A" and r["echo"] == "hello proxy" and r["resource_text"] == "Hello from A" and r["prompt_text"] == "Hello, proxy! (A)" and r["session_id"]' $cl --url "$(U $P2 mcp)" --scenario basic
  check "$c progress py2" "$PROG" $cl --url "$(U $P2 mcp)" --scenario progress
  check "$c many_calls py2" 'r["names"] == ["A"] * 10 and r["echoes"] == 10' $cl --url "$(U $P2 mcp)" --scenario many_calls
  check "$c terminate py2" 'r["delete_status"] == 200 and r["after_delete_status"] == 404 and r["session_id"]' $cl --url "$(U $P2 mcp)" --scenario terminate
  check "$c tool deploy_db py2" 'r["text"] == "deployed db by A"' $cl --url "$(U $P2 mcp)" --scenario tool --tool deploy_db
  check "$c basic py2 stateless+json" 'r["server"] == "SJ" and r["session_id"] is None and r["pages"] == 3' $cl --url "$(U $P2SJ mcp)" --scenario basic
  check "$c progress py2 json (none)" 'r["progress"] == [] and r["result"] == "done"' $cl --url "$(U $P2SJ mcp)" --scenario progress
  check "$c basic py1" 'r["server"] == "B" and r["pages"] == 1 and r["tools_count"] == 3' $cl --url "$(U $P1 mcp)" --scenario basic
  check "$c progress py1" "$PROG" $cl --url "$(U $P1 mcp)" --scenario progress
  check "$c terminate py1" 'r["after_delete_status"] == 404' $cl --url "$(U $P1 mcp)" --scenario terminate
  check "$c progress py1 stateless" "$PROG and r['session_id'] is None" $cl --url "$(U $P1S mcp)" --scenario progress
  check "$c sse basic py1" 'r["server"] == "B" and r["session_id"]' $cl --url "$(U $P1 sse)" --transport sse --scenario basic
  check "$c sse progress py1" "$PROG" $cl --url "$(U $P1 sse)" --transport sse --scenario progress
  check "$c basic everything" 'r["server_info"] == "mcp-servers/everything" and r["echo"] == "Echo: hello proxy"' $cl --url "$(U $EVH mcp)" --scenario basic
  check "$c progress everything" "$EVPROG" $cl --url "$(U $EVH mcp)" --scenario progress
  check "$c many_calls everything" 'r["echoes"] == 10' $cl --url "$(U $EVH mcp)" --scenario many_calls
  check "$c terminate everything (400, not 404)" 'r["delete_status"] == 200 and r["after_delete_status"] == 400' $cl --url "$(U $EVH mcp)" --scenario terminate
  check "$c sse basic everything" 'r["echo"] == "Echo: hello proxy" and r["session_id"]' $cl --url "$(U $EVS sse)" --transport sse --scenario basic
  check "$c sse progress everything" "$EVPROG" $cl --url "$(U $EVS sse)" --transport sse --scenario progress
done

# the 2026-07-28 era (py2 client and server only)
check "PY2C modern py2" 'r["protocol_version"] == "2026-07-28" and r["session_id"] is None and r["pages"] == 3 and r["server"] == "A"' $PY2C --url "$(U $P2 mcp)" --scenario modern
check "PY2C modern progress py2" "$PROG" $PY2C --url "$(U $P2 mcp)" --scenario progress --era modern
check "PY2C modern Mcp-Param-Env" 'r["text"] == "deployed app by A" and any("mcp-param-env=staging" in e for e in r["http"])' $PY2C --url "$(U $P2 mcp)" --scenario tool --tool deploy_app --args '{"env":"staging"}' --era modern
check "PY2C auto -> modern on py2" 'r["protocol_version"] == "2026-07-28"' $PY2C --url "$(U $P2 mcp)" --scenario many_calls --count 2 --era auto
check "PY2C auto -> legacy on py1" 'r["protocol_version"] == "2025-11-25" and r["http"][0].startswith("POST 400")' $PY2C --url "$(U $P1 mcp)" --scenario many_calls --count 2 --era auto
check "PY2C auto -> legacy on everything" 'r["protocol_version"] == "2025-11-25"' $PY2C --url "$(U $EVH mcp)" --scenario many_calls --count 2 --era auto
check_fails "PY2C modern on py1" $PY2C --url "$(U $P1 mcp)" --scenario modern

echo "peers selftest: $pass passed, $fail failed"
[[ $fail == 0 ]]
