# Shared by the install_*_deps.sh scripts (sourced, not run). The caller sets PREFIX (its name in messages)
# and defines hint() (how to install by hand); it then uses:
#   first_working CANDIDATE...   print the first candidate that is executable and answers --version
#   fail MESSAGE                 print the message and the manual hint on stderr, exit 1
#   need_root WHAT               set SUDO to () as root, (sudo -n) with passwordless sudo, else fail
#   quietly WHAT COMMAND...      run a command with its output in a log; on failure show its tail and fail

first_working() {
  local c
  for c in "$@"; do
    if [ -n "$c" ] && [ -x "$c" ] && "$c" --version >/dev/null 2>&1; then
      echo "$c"; return 0
    fi
  done
  return 1
}

fail() {
  echo "$PREFIX: ERROR: $*" >&2
  hint >&2
  exit 1
}

need_root() {
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    fail "$1 needs root (run: sudo $0)"
  fi
}

quietly() {
  local what=$1 log
  shift
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    fail "$what failed (see above)"
  fi
  rm -f "$log"
}
