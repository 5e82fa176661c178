#!/usr/bin/env bash
# Per-second collection, in one run: `ipfs-sentinel serve` (release build) with
# collection_interval_seconds: 1, collecting from the Kubo stand-in (bench/kubo-fixtures.py,
# replaying tests/fixtures/kubo), its data dir holding a full 24 h of history at 1 s (86,400
# ticks of 200 series, written by `cargo bench --bench history` with BENCH_STEP_SECONDS=1),
# beside Debian's prometheus-node-exporter, both scraped every second for DURATION seconds.
# Prints each one's CPU as a share of one core (utime+stime from /proc/PID/stat over the
# window), VmRSS and VmHWM at the end, and the sentinel's collections in the window.
# Usage: bash bench/per-second.sh     env: DURATION (600), SENTINEL_BIN (the binary to run),
#   PERF_DATA (a file: also `perf record -F 999 --call-graph ${PERF_CALL_GRAPH:-fp}` the
#   sentinel over the window into it; perf's own cost then shows in the CPU figure, so take the
#   figures from a run without it; PERF_CALL_GRAPH=dwarf gives whole stacks in a release build),
#   HISTORY_CACHE (a folder: the 24 h history is written there once and copied from it by later
#   runs, saving the 3-4 minutes of writing it; it then ends when it was written, so use it for
#   profiling, not for the figures)
. "$(dirname "$0")/lib.sh"
duration=${DURATION:-600}
apt_install prometheus-node-exporter prometheus-node-exporter

# the release binary; built when missing (SENTINEL_BIN names another)
sentinel_bin=${SENTINEL_BIN:-target/release/ipfs-sentinel}
[ -x "$sentinel_bin" ] || cargo build --release --quiet
echo "binary: $sentinel_bin ($(stat -c %y "$sentinel_bin" | cut -d. -f1))"
if [ -n "${HISTORY_CACHE:-}" ] && [ -d "$HISTORY_CACHE/history" ]; then
  echo "copying the 24 h history written at $(stat -c %y "$HISTORY_CACHE/history" | cut -d. -f1) from $HISTORY_CACHE"
  cp -a "$HISTORY_CACHE" "$work/data"
else
  echo "writing a full 24 h history at 1 s (cargo bench --bench history)..."
  BENCH_STEP_SECONDS=1 BENCH_DATA_DIR="$work/data" cargo bench --quiet --bench history | grep '^wrote'
  if [ -n "${HISTORY_CACHE:-}" ]; then mkdir -p "$HISTORY_CACHE" && cp -a "$work/data/." "$HISTORY_CACHE/"; fi
fi

kubo_port=$(free_port)
python3 bench/kubo-fixtures.py "$kubo_port" 2>"$work/kubo.log" &
pids+=($!)
cat >"$work/sentinel.yaml" <<YAML
ipfs: {api_url: "http://127.0.0.1:$kubo_port", timeout_seconds: 1}
cluster:
  node_id: per-second-bench
  monitoring: {collection_interval_seconds: 1}
YAML
sentinel_port=$(free_port)
"$sentinel_bin" serve --config "$work/sentinel.yaml" \
  --listen "127.0.0.1:$sentinel_port" --data-dir "$work/data" >"$work/sentinel.log" 2>&1 &
sentinel_pid=$!; pids+=("$sentinel_pid")
node_exporter_port=$(free_port)
prometheus-node-exporter --web.listen-address="127.0.0.1:$node_exporter_port" --log.level=warn \
  >"$work/node-exporter.log" 2>&1 &
node_exporter_pid=$!; pids+=("$node_exporter_pid")
wait_for "127.0.0.1:$sentinel_port/-/ready"
wait_for "127.0.0.1:$node_exporter_port/metrics"
sleep 10 # let the start-up (loading the history) pass

cpu_s() { sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($12 + $13) / hz}'; }
python3 - "$sentinel_port" "$node_exporter_port" "$duration" <<'PY' &
import sys, time, urllib.request
ports, end = sys.argv[1:3], time.time() + float(sys.argv[3])
while time.time() < end:
    began = time.time()
    for p in ports:
        urllib.request.urlopen(f"http://127.0.0.1:{p}/metrics", timeout=5).read()
    time.sleep(max(0.0, 1.0 - (time.time() - began)))
PY
scraper=$!; pids+=("$scraper")
if [ -n "${PERF_DATA:-}" ]; then
  perf record -F 999 --call-graph "${PERF_CALL_GRAPH:-fp}" -o "$PERF_DATA" -p "$sentinel_pid" >"$work/perf.log" 2>&1 &
  perf_pid=$!
fi
s0=$(cpu_s "$sentinel_pid"); n0=$(cpu_s "$node_exporter_pid"); t0=$(date +%s.%N)
echo "window: ${duration} s from $(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg)"
wait "$scraper"
if [ -n "${PERF_DATA:-}" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
s1=$(cpu_s "$sentinel_pid"); n1=$(cpu_s "$node_exporter_pid"); t1=$(date +%s.%N)
echo "load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
collections=$(curl -sf -G "127.0.0.1:$sentinel_port/api/v1/export" --data-urlencode format=csv \
  --data-urlencode 'match=ipfs_sentinel_collector_success{collector="node"}' \
  --data-urlencode "range=${duration}s" | tail -n +2 | wc -l)
samples=$(curl -sf "127.0.0.1:$sentinel_port/metrics" | awk '$1=="ipfs_sentinel_history_samples" {print $2}')
share() { awk -v a="$1" -v b="$2" -v t0="$t0" -v t1="$t1" 'BEGIN {printf "%.2f %% of a core (%.2f CPU s over %.0f s)", 100 * (b - a) / (t1 - t0), b - a, t1 - t0}'; }
echo "sentinel (collecting every 1 s, $collections collections, $samples samples of history): $(share "$s0" "$s1"); VmRSS $(kb "$sentinel_pid" VmRSS) kB, VmHWM $(kb "$sentinel_pid" VmHWM) kB"
echo "node_exporter (scraped every 1 s): $(share "$n0" "$n1"); VmRSS $(kb "$node_exporter_pid" VmRSS) kB, VmHWM $(kb "$node_exporter_pid" VmHWM) kB"
