#!/usr/bin/env bash
# Installs what ipfs-sentinel's tests need on a fresh Debian machine, then runs every test,
# the ones against real services included. This is the README's test command; .ci/run calls it.
#
# Installs: Debian's prometheus (prometheus + promtool), prometheus-alertmanager (Alertmanager
# and amtool), prometheus-node-exporter (the web config reference), victoria-metrics (a remote
# write receiver), e2fsprogs (chattr, for the
# read-only data dir test), curl, docker-compose (to check the compose file; no engine is
# needed), chromium and a font (for the dashboard's browser test), Node.js and npm when
# missing, and
# js-ipfs 0.66.1 (a real IPFS node serving the Kubo RPC API) from tests/ipfs-node's lockfile.
# Needs: a Rust toolchain (rustup) with clippy and rustfmt.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

command -v cargo >/dev/null || {
  echo "cargo not found: install Rust with rustup (https://rustup.rs), then run this again" >&2
  exit 1
}

step "Debian packages (prometheus, promtool, Alertmanager, amtool, node_exporter, VictoriaMetrics, docker-compose, chromium; Node.js when missing)"
packages=(prometheus prometheus-alertmanager prometheus-node-exporter victoria-metrics e2fsprogs curl docker-compose chromium fonts-dejavu-core)
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
as_root apt-get update -qq
DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
prometheus --version 2>&1 | head -n 1
node --version

step "js-ipfs for the real-node tests (npm ci from tests/ipfs-node/package-lock.json)"
stamp=tests/ipfs-node/node_modules/.installed-from-package-lock.json
if [ -x tests/ipfs-node/node_modules/.bin/jsipfs ] && cmp -s tests/ipfs-node/package-lock.json "$stamp"; then
  echo "already installed from this lockfile"
else
  npm ci --prefix tests/ipfs-node --no-audit --no-fund --loglevel=error
  cp tests/ipfs-node/package-lock.json "$stamp"
fi

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --quiet --all-targets -- -D warnings

step "rule unit tests: promtool and ipfs-sentinel test-rules must reach the same verdict"
cargo build --quiet
for t in rules/*.test.yml tests/conformance/*.test.yml; do
  p=0; promtool test rules "$t" >/dev/null 2>&1 || p=$?
  s=0; target/debug/ipfs-sentinel test-rules --promql prometheus-2.42 "$t" >/dev/null 2>&1 || s=$?
  if [ "$p" -ne "$s" ]; then
    echo "disagree on $t: promtool exit $p, ipfs-sentinel exit $s"
    exit 1
  fi
  if [ "$p" -eq 0 ]; then echo "$t: both pass"; else echo "$t: both fail"; fi
done

step "cargo test (every test, the ones against real services included; benches are run by cargo bench)"
cargo test --lib --bins --tests -- --include-ignored

step "cargo test --doc (the examples in the API docs: durations and times, the short form, the exposition, the alert state machine)"
cargo test --doc
