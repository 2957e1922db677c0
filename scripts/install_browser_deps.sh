#!/usr/bin/env bash
# Install what the browser tests (tests/browser) need on a fresh Debian/Ubuntu machine: Debian's chromium.
# Playwright (the Python package) comes with the test extra: pip install -e '.[test]'.
# Idempotent and quiet: does nothing when a chromium is already there. Needs root (or passwordless sudo).
# Exits non-zero with a clear message when it cannot install it.
set -euo pipefail
source "$(dirname "$0")/install_common.sh"
PREFIX="browser deps"
hint() {
  echo "$PREFIX: the browser tests need Chromium. Install it yourself (Debian/Ubuntu: apt-get install chromium),"
  echo "$PREFIX: or point MASKEDU_CHROMIUM at a chromium/chrome executable."
}
found() {
  first_working "${MASKEDU_CHROMIUM:-}" /usr/bin/chromium "$(command -v chromium 2>/dev/null || true)" \
                "$(command -v chromium-browser 2>/dev/null || true)"
}

if path=$(found); then
  echo "$PREFIX: chromium already installed ($path: $("$path" --version 2>/dev/null | head -n1))"
  exit 0
fi
need_root "installing chromium"
command -v apt-get >/dev/null 2>&1 || fail "apt-get is not available on this machine (not Debian/Ubuntu)"
export DEBIAN_FRONTEND=noninteractive
echo "$PREFIX: installing chromium with apt-get (a few minutes on a fresh machine) ..."
quietly "apt-get update" "${SUDO[@]}" apt-get update -qq
quietly "apt-get install chromium" "${SUDO[@]}" apt-get install -y -qq chromium
path=$(found) || fail "apt-get reported success but no working chromium was found"
echo "$PREFIX: chromium ready ($path: $("$path" --version 2>/dev/null | head -n1))"
