#!/usr/bin/env bash
# Install what the JupyterHub test (tests/browser/test_jupyterhub.py) needs on a fresh Debian/Ubuntu machine:
# Node.js and npm (apt-get), then JupyterHub's proxy, configurable-http-proxy, from npm (global install).
# JupyterHub itself (the Python package) comes with the test extra: pip install -e '.[test]'.
# Idempotent and quiet: does nothing when a working configurable-http-proxy is already there.
# Needs root (or passwordless sudo) for what is missing. Exits non-zero with a clear message when it cannot.
set -euo pipefail
source "$(dirname "$0")/install_common.sh"
PREFIX="hub deps"
CHP_SPEC="configurable-http-proxy@5"
hint() {
  echo "$PREFIX: the JupyterHub test needs JupyterHub's proxy. Install it yourself:"
  echo "$PREFIX:   apt-get install nodejs npm   then   npm install -g $CHP_SPEC"
  echo "$PREFIX: or point MASKEDU_CHP at a configurable-http-proxy executable."
}
found() {
  first_working "${MASKEDU_CHP:-}" "$(command -v configurable-http-proxy 2>/dev/null || true)"
}

if path=$(found); then
  echo "$PREFIX: configurable-http-proxy already installed ($path, version $("$path" --version 2>/dev/null | head -n1))"
  exit 0
fi
need_root "installing Node.js and the proxy"
export DEBIAN_FRONTEND=noninteractive
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || fail "node/npm are missing and apt-get is not available (not Debian/Ubuntu)"
  echo "$PREFIX: installing nodejs and npm with apt-get (a few minutes on a fresh machine) ..."
  quietly "apt-get update" "${SUDO[@]}" apt-get update -qq
  quietly "apt-get install nodejs npm" "${SUDO[@]}" apt-get install -y -qq nodejs npm
fi
echo "$PREFIX: installing $CHP_SPEC with npm (node $(node --version)) ..."
quietly "npm install -g $CHP_SPEC" "${SUDO[@]}" npm install -g --no-fund --no-audit --loglevel=error "$CHP_SPEC"
hash -r
path=$(found) || fail "npm reported success but no working configurable-http-proxy was found on PATH ($(npm prefix -g)/bin)"
echo "$PREFIX: configurable-http-proxy ready ($path, version $("$path" --version 2>/dev/null | head -n1))"
