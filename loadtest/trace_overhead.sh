#!/usr/bin/env bash
# What traces and the access log cost in req/s (issue 11's budgets: tracing off costs nothing
# measurable, 1 % sampling at most 3 %, 100 % at most 15 %, the access log at most 5 %): the
# compare.sh route and request (loadtest/bench.toml, nginx from ../shared/bench as the upstream)
# served by four mcp-edge instances at once, each one variant:
#   :9200 base     access log off, no [traces]
#   :9201 access   access log on (the default; to a file)
#   :9202 sample1  access log off, [traces] sample = 0.01
#   :9203 sample100 access log off, [traces] sample = 1.0
# Spans go to the real OTLP receiver the tests use (.peers/otel, gRPC). It cannot take 40k
# spans/s, so at 100 % most are dropped at the bounded queue: the figure is the proxy's own cost
# (spans built, queued, batched, encoded and sent as fast as the collector takes them).
# wrk on CPU 0, proxies, upstream and receiver on CPU 1 (as compare.sh pins them); ROUNDS
# interleaved runs of DURATION seconds, medians.
#   make dist && ROUNDS=3 DURATION=10 loadtest/trace_overhead.sh
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

# The receiver prints its ports as one JSON line.
mkfifo "$WORK/ports"
setsid taskset -c 1 .peers/otel/bin/python tests/peers/otlp_receiver.py --out /dev/null >"$WORK/ports" 2>"$WORK/receiver.log" < <(sleep 1000000) &
PIDS+=($!)
GRPC=$(python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["grpc"])' <"$WORK/ports")

python3 - "$WORK" "$GRPC" <<'PY'
import sys
out, grpc = sys.argv[1], sys.argv[2]
# bench.toml's own `[log]` (access log off, as compare.sh runs it) gives way to each variant's.
base = open("loadtest/bench.toml").read().replace("[log]\naccess = false\n", "")
variants = {
    "base": (9200, 9290, '[log]\naccess = false\n'),
    "access": (9201, 9291, f'[log]\naccess_file = "{out}/access.log"\n'),
    "sample1": (9202, 9292, f'[log]\naccess = false\n\n[traces]\nendpoint = "http://127.0.0.1:{grpc}"\nsample = 0.01\n'),
    "sample100": (9203, 9293, f'[log]\naccess = false\n\n[traces]\nendpoint = "http://127.0.0.1:{grpc}"\nsample = 1.0\n'),
}
for name, (port, admin, extra) in variants.items():
    text = base
    for a, b in [("127.0.0.1:9200", f"127.0.0.1:{port}"), ("127.0.0.1:9290", f"127.0.0.1:{admin}"),
                 ("/tmp/mcp-edge-bench.pid", f"{out}/{name}.pid"), ("/tmp/mcp-edge-bench-upgrade.sock", f"{out}/{name}.sock")]:
        text = text.replace(a, b)
    head, sep, rest = text.partition("[[pool]]")
    open(f"{out}/{name}.toml", "w").write(head + extra + "\n" + sep + rest)
PY

mkdir -p "$WORK/nginx"
setsid taskset -c 1 nginx -p "$WORK/nginx" -c "$(realpath "$BENCH/nginx-upstream.conf")" -g 'daemon off;' >"$WORK/nginx.log" 2>&1 &
PIDS+=($!)
NAMES=(base access sample1 sample100)
declare -A VARIANT_PID
for i in 0 1 2 3; do
  setsid taskset -c 1 "$BIN" --config "$WORK/${NAMES[$i]}.toml" >"$WORK/${NAMES[$i]}.log" 2>&1 &
  PIDS+=($!)
  VARIANT_PID[$((9200 + i))]=$!
done
for port in 9200 9201 9202 9203; do
  for _ in $(seq 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
      --data-binary "@$BENCH/body.json" "http://127.0.0.1:$port/mcp" || true)
    [[ $code == 200 ]] && break
    sleep 0.1
  done
  [[ $code == 200 ]] || { echo "port $port answered $code" >&2; exit 1; }
done

# One wrk run against port $1 for $2 seconds: "req/s cpu_us_per_request", the proxy's CPU time
# (user + system, from /proc) divided by the requests it served: its own cost, whatever the
# receiver, nginx or wrk sharing the machine take.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() {
  local pid=${VARIANT_PID[$1]} before after out
  before=$(cpu_ticks "$pid")
  out=$(taskset -c 0 wrk -t2 -c64 -d"$2"s -s loadtest/post.lua "http://127.0.0.1:$1/mcp")
  after=$(cpu_ticks "$pid")
  local rps total
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  total=$(awk '/requests in/{print $1}' <<<"$out")
  python3 -c "import os,sys; t=os.sysconf('SC_CLK_TCK'); print(f'{float(sys.argv[1]):.0f}/{(int(sys.argv[3]) - int(sys.argv[2])) / t * 1e6 / int(sys.argv[4]):.1f}')" "$rps" "$before" "$after" "$total"
}
for port in 9200 9201 9202 9203; do run $port 3 >/dev/null; done
declare -A got
for _ in $(seq "$ROUNDS"); do
  for i in 0 1 2 3; do got[$i]+="$(run $((9200 + i)) "$DURATION") "; done
done
for i in 0 1 2 3; do echo "${NAMES[$i]} (req/s / proxy CPU µs per request): ${got[$i]}"; done
python3 -c "
import statistics as s, sys
names = ['base', 'access log on', '1 % sampled', '100 % sampled']
runs = [[tuple(map(float, x.split('/'))) for x in a.split()] for a in sys.argv[1:]]
rps = [s.median(r[0] for r in v) for v in runs]
cpu = [s.median(r[1] for r in v) for v in runs]
for name, r, c in zip(names, rps, cpu):
    print(f'{name:>14}: {r:8.0f} req/s ({100 * (1 - r / rps[0]):5.1f} % below base), {c:5.1f} µs proxy CPU per request ({100 * (c / cpu[0] - 1):5.1f} % over base)')
" "${got[0]}" "${got[1]}" "${got[2]}" "${got[3]}"
for admin in 9292 9293; do
  echo "spans on :$admin: $(curl -s "http://127.0.0.1:$admin/metrics" | grep '^mcp_edge_trace_spans_total' | tr '\n' ' ')"
done
