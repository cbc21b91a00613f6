#!/usr/bin/env bash
# What authentication and policy cost in req/s (issue 9's budget: 5 %): the compare.sh route
# and request (loadtest/bench.toml, nginx from ../shared/bench as the upstream) served by two
# mcp-edge instances at once, one as is (:9200) and one with a `jwt` authenticator (ES256,
# static key set) and a 20-rule policy whose last rule allows the call (:9201). Both get the
# same request, token included; wrk on CPU 0, proxies and upstream on CPU 1 (as compare.sh
# pins them); ROUNDS interleaved runs of DURATION seconds, medians.
#   make dist && ROUNDS=3 DURATION=10 loadtest/auth_overhead.sh
# Needs nginx, wrk, taskset, and .peers (scripts/peers.sh) for PyJWT to sign the token.
# Last result (2026-11-30): 21,929 vs 21,806 req/s, 0.6 % less.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
BIN=${BIN:-target/dist/mcp-edge}
BENCH=${BENCH:-../shared/bench}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

# A P-256 key, its JWKS, and a token valid for a day.
.peers/py2/bin/python - "$WORK" <<'PY'
import json, sys, time, jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
out = sys.argv[1]
key = ec.generate_private_key(ec.SECP256R1())
jwk = json.loads(ECAlgorithm.to_jwk(key.public_key())) | {"kid": "k1", "alg": "ES256"}
open(f"{out}/jwks.json", "w").write(json.dumps({"keys": [jwk]}))
now = int(time.time())
claims = {"iss": "https://auth.example.com", "aud": "https://mcp.example.com/mcp", "sub": "alice",
          "scope": "tools:read tools:call", "exp": now + 86400, "iat": now}
open(f"{out}/token", "w").write(jwt.encode(claims, key, algorithm="ES256", headers={"kid": "k1"}))
PY

# The same config with auth and a 20-rule policy, on other ports and files.
python3 - "$WORK" <<'PY'
import sys
out = sys.argv[1]
base = open("loadtest/bench.toml").read()
for a, b in [("127.0.0.1:9200", "127.0.0.1:9201"), ("127.0.0.1:9290", "127.0.0.1:9291"),
             ("/tmp/mcp-edge-bench.pid", f"{out}/auth.pid"), ("/tmp/mcp-edge-bench-upgrade.sock", f"{out}/auth.sock")]:
    base = base.replace(a, b)
rules = []
for i in range(19):
    if i % 2 == 0:
        rules.append(f'[[route.policy.rule]]\neffect = "deny"\ntools = ["internal_{i}_*"]\n')
    else:
        rules.append(f'[[route.policy.rule]]\neffect = "allow"\nroles = ["role{i}"]\ntools = ["deploy_{i}_*"]\nrequire_scopes = ["tools:call"]\n')
rules.append('[[route.policy.rule]]\neffect = "allow"\nmethods = ["initialize", "ping", "notifications/*", "tools/list"]\ntools = ["get_*", "search"]\nrequire_scopes = ["tools:call"]\n')
route = '[[route]]\nname = "mcp"\npath = "/mcp"\npool = "main"\n'
rule = '[[route.rule]]\ntool = "get_*"\npool = "weather"\n'
assert route in base and rule in base
base = base.replace(route, route + 'auth = ["tokens"]\npublic_url = "https://mcp.example.com/mcp"\n')
base = base.replace(rule, rule + "[route.policy]\n" + "".join(rules))
auth = f'[[authenticator]]\nname = "tokens"\nkind = "jwt"\nissuer = "https://auth.example.com"\njwks_file = "{out}/jwks.json"\n'
open(f"{out}/auth.toml", "w").write(auth + base)
PY
cat > "$WORK/post.lua" <<LUA
local f = assert(io.open("$BENCH/body.json", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["Authorization"] = "Bearer $(cat "$WORK/token")"
LUA

mkdir -p "$WORK/nginx"
setsid taskset -c 1 nginx -p "$WORK/nginx" -c "$(realpath "$BENCH/nginx-upstream.conf")" -g 'daemon off;' >"$WORK/nginx.log" 2>&1 &
PIDS+=($!)
setsid taskset -c 1 "$BIN" --config loadtest/bench.toml >"$WORK/plain.log" 2>&1 &
PIDS+=($!)
setsid taskset -c 1 "$BIN" --config "$WORK/auth.toml" >"$WORK/auth.log" 2>&1 &
PIDS+=($!)
for port in 9200 9201; do
  for _ in $(seq 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
      -H "Authorization: Bearer $(cat "$WORK/token")" --data-binary "@$BENCH/body.json" "http://127.0.0.1:$port/mcp" || true)
    [[ $code == 200 ]] && break
    sleep 0.1
  done
  [[ $code == 200 ]] || { echo "port $port answered $code" >&2; exit 1; }
done

run() { taskset -c 0 wrk -t2 -c64 -d"$2"s -s "$WORK/post.lua" "http://127.0.0.1:$1/mcp" | awk '/Requests\/sec/{print $2}'; }
run 9200 3 >/dev/null; run 9201 3 >/dev/null
plain=(); authed=()
for _ in $(seq "$ROUNDS"); do plain+=("$(run 9200 "$DURATION")"); authed+=("$(run 9201 "$DURATION")"); done
echo "without auth: ${plain[*]}"
echo "jwt + policy: ${authed[*]}"
python3 -c "
import statistics as s, sys
a = [float(x) for x in sys.argv[1].split()]; b = [float(x) for x in sys.argv[2].split()]
print(f'median {s.median(a):.0f} vs {s.median(b):.0f} req/s: auth and policy cost {100 * (1 - s.median(b) / s.median(a)):.1f} %')
" "${plain[*]}" "${authed[*]}"
