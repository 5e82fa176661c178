#!/usr/bin/env bash
# Memory of `ipfs-sentinel serve` holding a full 24 h history of 200 series at 15 s (written by
# `cargo bench --bench history` with BENCH_DATA_DIR), side by side with the same binary on an
# empty history, in one run. Prints VmRSS and VmHWM of each after both have settled.
# Usage: bash bench/history-rss.sh
. "$(dirname "$0")/lib.sh"

cargo build --release --quiet
BENCH_DATA_DIR="$work/full" cargo bench --quiet --bench history | sed 's/^/  bench: /'

cat > "$work/sentinel.yaml" <<YAML
ipfs: {api_url: "http://127.0.0.1:$(free_port)", timeout_seconds: 1}
cluster:
  node_id: rss-bench
  monitoring: {collection_interval_seconds: 15}
YAML

start() { # name data-dir -> prints the pid
  local port; port=$(free_port)
  target/release/ipfs-sentinel serve --config "$work/sentinel.yaml" --listen "127.0.0.1:$port" \
    --data-dir "$2" >"$work/$1.log" 2>&1 &
  echo "$! $port"
}
read -r full_pid full_port < <(start full "$work/full")
read -r empty_pid empty_port < <(start empty "$work/empty")
pids+=("$full_pid" "$empty_pid")
for port in "$full_port" "$empty_port"; do wait_for "127.0.0.1:$port/-/ready" || true; done
# Read the whole history once, as a dashboard or export would, then let both settle.
curl -sf "127.0.0.1:$full_port/api/v1/export?format=csv&step=1h&fn=avg" >/dev/null
sleep 5
samples=$(curl -sf "127.0.0.1:$full_port/metrics" | awk '$1=="ipfs_sentinel_history_samples" {print $2}')
printf '%-28s %10s %10s\n' "serve with" "VmRSS kB" "VmHWM kB"
printf '%-28s %10s %10s\n' "24 h history ($samples samples)" "$(kb "$full_pid" VmRSS)" "$(kb "$full_pid" VmHWM)"
printf '%-28s %10s %10s\n' "empty history" "$(kb "$empty_pid" VmRSS)" "$(kb "$empty_pid" VmHWM)"
echo "ratio full/empty (VmRSS): $(awk -v a="$(kb "$full_pid" VmRSS)" -v b="$(kb "$empty_pid" VmRSS)" 'BEGIN {printf "%.2f", a/b}')"
