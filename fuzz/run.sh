#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for a bounded time each, one after another, with
# libFuzzer through `cargo fuzz`. Not part of CI: fuzzing is slow and its findings are fixed
# and kept as regression tests (tests/fixtures/fuzz/<target>/, replayed by
# tests/fuzz_regressions.rs under `cargo test`).
#
# Usage: bash fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 240 s, every target)
#   targets: config rule_file expression kubo ipfs_cluster promtool_test alertmanager_webhook
#            query_api
#
# Builds with debug assertions, so an integer overflow counts as a crash too.
# Needs cargo-fuzz (installed from crates.io when missing). libFuzzer needs nightly flags
# (-Zsanitizer=address): the stable toolchain gives them with RUSTC_BOOTSTRAP=1. The first build
# instruments every dependency and takes about 15 minutes on 2 cores.
# Each target's corpus (fuzz/corpus/<target>/, not committed) is seeded from the test fixtures;
# a crash, panic, timeout (30 s per input) or out-of-memory (2 GB) stops that target and leaves
# the input in fuzz/artifacts/<target>/. Exits non-zero when any target found something.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-240}
shift || true
all=(config rule_file expression kubo ipfs_cluster promtool_test alertmanager_webhook query_api)
targets=("${@:-${all[@]}}")

command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
fuzz() { RUSTC_BOOTSTRAP=1 cargo fuzz "$@"; }

# seed TARGET FILE...: copies files into the target's corpus.
seed() { local dir=fuzz/corpus/$1; shift; mkdir -p "$dir"; cp "$@" "$dir/"; }
seed config tests/fixtures/config/*.yaml src/default-config.yaml
seed rule_file rules/*.rules.yml tests/conformance/*.rules.yml
seed kubo tests/fixtures/kubo/*
seed ipfs_cluster tests/fixtures/ipfs_cluster/*
seed promtool_test rules/*.test.yml tests/conformance/*.test.yml
seed alertmanager_webhook tests/fixtures/alertmanager/*.json
# Expressions: every one-line `expr:` of the rule and test files, one per seed file.
mkdir -p fuzz/corpus/expression
sed -n "s/^ *-\{0,1\} *expr: *//p" rules/*.yml tests/conformance/*.yml |
  sed -e "s/^'\(.*\)'$/\1/" -e 's/^"\(.*\)"$/\1/' | grep -v '^[|>]' | sort -u |
  while IFS= read -r e; do printf '%s' "$e" >"fuzz/corpus/expression/seed-$(printf '%s' "$e" | md5sum | cut -c1-12)"; done

# Query API requests: each expression seed as a query, instant and over a range.
mkdir -p fuzz/corpus/query_api
for f in fuzz/corpus/expression/seed-*; do
  printf 'query=%s&time=300&start=0&end=600&step=15' "$(cat "$f")" >"fuzz/corpus/query_api/$(basename "$f")"
done
printf 'query=up&start=0&end=86400&step=1' >fuzz/corpus/query_api/too-fine-step
printf 'query=sum(&time=x' >fuzz/corpus/query_api/malformed

# Debug assertions on (-a): an integer overflow is a panic here, not a silent wrap.
fuzz build -a --fuzz-dir fuzz
found=()
for t in "${targets[@]}"; do
  printf '\n==> %s for %s s\n' "$t" "$seconds"
  if ! fuzz run -a --fuzz-dir fuzz "$t" "fuzz/corpus/$t" -- \
      -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 2>&1 | grep -v '^#[0-9]' | tail -n 25; then
    found+=("$t")
  fi
done

echo
if [ ${#found[@]} -eq 0 ]; then
  echo "no crash, panic, timeout or out-of-memory in: ${targets[*]}"
else
  echo "found something in: ${found[*]}"
  echo "inputs are in fuzz/artifacts/<target>/; fix the library, then keep each input as a"
  echo "regression test: cp fuzz/artifacts/<target>/<file> tests/fixtures/fuzz/<target>/"
  exit 1
fi
