#!/usr/bin/env bash
# Install what the JupyterHub test (tests/browser/test_jupyterhub.py) needs on a fresh Debian/Ubuntu machine:
# Node.js and npm (apt-get), then JupyterHub's proxy, configurable-http-proxy, from npm (global install).
# JupyterHub itself (the Python package) comes with the test extra: pip install -e '.[test]'.
# Idempotent and quiet: does nothing when a working configurable-http-proxy is already there.
# Needs root (or passwordless sudo) for what is missing. Exits non-zero with a clear message when it cannot.
set -euo pipefail

CHP_SPEC="configurable-http-proxy@5"

found() {
  local c
  for c in "${MASKEDU_CHP:-}" "$(command -v configurable-http-proxy 2>/dev/null || true)"; do
    if [ -n "$c" ] && [ -x "$c" ] && "$c" --version >/dev/null 2>&1; then
      echo "$c"; return 0
    fi
  done
  return 1
}

if path=$(found); then
  echo "hub deps: configurable-http-proxy already installed ($path, version $("$path" --version 2>/dev/null | head -n1))"
  exit 0
fi

fail() {
  echo "hub deps: ERROR: $*" >&2
  echo "hub deps: the JupyterHub test needs JupyterHub's proxy. Install it yourself:" >&2
  echo "hub deps:   apt-get install nodejs npm   then   npm install -g $CHP_SPEC" >&2
  echo "hub deps: or point MASKEDU_CHP at a configurable-http-proxy executable." >&2
  exit 1
}

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  fail "installing Node.js and the proxy needs root (run: sudo $0)"
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive

if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || fail "node/npm are missing and apt-get is not available (not Debian/Ubuntu)"
  echo "hub deps: installing nodejs and npm with apt-get (a few minutes on a fresh machine) ..."
  if ! "${SUDO[@]}" apt-get update -qq >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    fail "apt-get update failed (see above)"
  fi
  if ! "${SUDO[@]}" apt-get install -y -qq nodejs npm >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    fail "apt-get install nodejs npm failed (see above)"
  fi
fi

echo "hub deps: installing $CHP_SPEC with npm (node $(node --version)) ..."
if ! "${SUDO[@]}" npm install -g --no-fund --no-audit --loglevel=error "$CHP_SPEC" >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  fail "npm install -g $CHP_SPEC failed (see above)"
fi
hash -r
path=$(found) || fail "npm reported success but no working configurable-http-proxy was found on PATH ($(npm prefix -g)/bin)"
echo "hub deps: configurable-http-proxy ready ($path, version $("$path" --version 2>/dev/null | head -n1))"
