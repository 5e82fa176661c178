# Shared preamble of the bench/ scripts; source it first: `. "$(dirname "$0")/lib.sh"`.
# Moves to the repository root, makes a scratch directory $work, and on exit stops every
# process whose pid was added to $pids and removes $work (copied first to $KEEP_WORK when that
# is set, whatever ended the script).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${KEEP_WORK:-}" ]; then
    mkdir -p "$KEEP_WORK" && cp -a "$work/." "$KEEP_WORK/" && echo "kept $work in $KEEP_WORK" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# A free TCP port on the loopback interface.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_for URL: polls until URL answers 2xx, for up to 20 s.
wait_for() {
  for _ in $(seq 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.2; done
  echo "no answer from $1 after 20 s" >&2
  return 1
}

# apt_install COMMAND PACKAGE...: installs the Debian packages when COMMAND is missing.
apt_install() {
  local cmd=$1; shift
  command -v "$cmd" >/dev/null && return 0
  local sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# kb PID FIELD: a /proc/PID/status field (VmRSS, VmHWM) in kB.
kb() { awk -v k="$2" '$1==k":" {print $2}' "/proc/$1/status"; }
