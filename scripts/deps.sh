#!/usr/bin/env bash
# Installs the system packages mcp-edge needs to build and test, when missing:
# cmake and a C compiler (Pingora's zlib-ng), curl, wrk (load tests), python3-venv (test peers),
# redis-server (the shared-limit tests run a real one), prometheus (its promtool checks the
# shipped alert rules and dashboard queries), chromium (renders the admin status page headless).
set -euo pipefail
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v cc >/dev/null || need+=(build-essential)
command -v curl >/dev/null || need+=(curl)
command -v wrk >/dev/null || need+=(wrk)
command -v redis-server >/dev/null || need+=(redis-server)
command -v promtool >/dev/null || need+=(prometheus)
command -v chromium >/dev/null || need+=(chromium)

python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
if ((${#need[@]})); then
  echo "deps: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "deps: cargo not found; install Rust with rustup" >&2; exit 1; }
