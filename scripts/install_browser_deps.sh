#!/usr/bin/env bash
# Install what the browser tests (tests/browser) need on a fresh Debian/Ubuntu machine: Debian's chromium.
# Playwright (the Python package) comes with the test extra: pip install -e '.[test]'.
# Idempotent and quiet: does nothing when a chromium is already there. Needs root (or passwordless sudo).
# Exits non-zero with a clear message when it cannot install it.
set -euo pipefail

found() {
  local c
  for c in "${MASKEDU_CHROMIUM:-}" /usr/bin/chromium "$(command -v chromium 2>/dev/null || true)" \
           "$(command -v chromium-browser 2>/dev/null || true)"; do
    if [ -n "$c" ] && [ -x "$c" ] && "$c" --version >/dev/null 2>&1; then
      echo "$c"; return 0
    fi
  done
  return 1
}

if path=$(found); then
  echo "browser deps: chromium already installed ($path: $("$path" --version 2>/dev/null | head -n1))"
  exit 0
fi

fail() {
  echo "browser deps: ERROR: $*" >&2
  echo "browser deps: the browser tests need Chromium. Install it yourself (Debian/Ubuntu: apt-get install chromium)," >&2
  echo "browser deps: or point MASKEDU_CHROMIUM at a chromium/chrome executable." >&2
  exit 1
}

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  fail "installing chromium needs root (run: sudo $0)"
fi
command -v apt-get >/dev/null 2>&1 || fail "apt-get is not available on this machine (not Debian/Ubuntu)"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "browser deps: installing chromium with apt-get (a few minutes on a fresh machine) ..."
export DEBIAN_FRONTEND=noninteractive
if ! "${SUDO[@]}" apt-get update -qq >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  fail "apt-get update failed (see above)"
fi
if ! "${SUDO[@]}" apt-get install -y -qq chromium >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  fail "apt-get install chromium failed (see above)"
fi
path=$(found) || fail "apt-get reported success but no working chromium was found"
echo "browser deps: chromium ready ($path: $("$path" --version 2>/dev/null | head -n1))"
