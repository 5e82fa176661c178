#!/usr/bin/env bash
# Remote write side by side with vmagent, in one run: ipfs-sentinel `serve` (release build,
# collecting from the Kubo stand-in bench/kubo-fixtures.py every INTERVAL_SECONDS, pushing its
# history with cluster.monitoring.remote_write) and Debian's vmagent 1.79 (scraping that same
# sentinel's /metrics every INTERVAL_SECONDS, with its on-disk queue in -remoteWrite.tmpDataPath)
# push the same node's series to one VictoriaMetrics 1.79. The sentinel's series carry
# pusher="sentinel", vmagent's pusher="vmagent" (not `agent`, which the sentinel's version_info carries
# itself: its own label wins over an external one, as in Prometheus).
#
# Phases: WARM_SECONDS with VictoriaMetrics up; VictoriaMetrics stopped for OUTAGE_SECONDS (the
# issue's ten minutes by default); started again on the same data dir; then until both agents
# have caught up (the sentinel: ipfs_sentinel_remote_write_lag_seconds back within three
# intervals; vmagent: vm_persistentqueue_bytes_pending 0), and SETTLE_SECONDS more.
#
# Reports, for the outage window (from 30 s before the stop to 30 s after the restart):
#   - samples lost: the sentinel's own count of its samples in that window (its query API,
#     the raw samples of {__name__=~".+"}[w]) less VictoriaMetrics' count of pusher="sentinel"
#     samples (the same query); for vmagent, the samples it scraped in the window (sum_over_time of
#     scrape_samples_scraped, which vmagent writes itself, times the scrapes expected from the
#     interval over the scrapes recorded) less VictoriaMetrics' count of pusher="vmagent" samples
#     other than vmagent's own up/scrape_* series.
#     When any are lost, the ticks they belong to (seconds from the stop and the restart).
#   - RSS: VmRSS sampled every 5 s (peak and last) of the sentinel process (everything it does:
#     collection, history, rules, remote write) and of vmagent.
#   - CPU per sample sent: utime+stime over the whole run / samples acknowledged (the
#     sentinel's ipfs_sentinel_remote_write_samples_total{result="sent"}; vmagent's
#     vmagent_remotewrite_block_size_rows_sum). The sentinel's CPU includes its collections.
#   - the marginal cost of remote write: a second sentinel, the same binary and configuration
#     without remote_write, runs beside the first for the whole run (vmagent scrapes this one;
#     a plain loop scrapes the first as often, so both serve the same scrapes); the first's RSS
#     and CPU less the second's is what pushing costs.
#   - time to catch up after the restart.
#
# Usage: bash bench/remote-write-vs-vmagent.sh
#   env: OUTAGE_SECONDS (600), WARM_SECONDS (120), SETTLE_SECONDS (60), INTERVAL_SECONDS (5),
#   SENTINEL_BIN (default: target/release/ipfs-sentinel, built here), KEEP_WORK=DIR (copy the
#   data dirs and logs there at the end)
. "$(dirname "$0")/lib.sh"

outage_s=${OUTAGE_SECONDS:-600}
warm_s=${WARM_SECONDS:-120}
settle_s=${SETTLE_SECONDS:-60}
interval_s=${INTERVAL_SECONDS:-5}
apt_install vmagent victoria-metrics
tick=$(getconf CLK_TCK)

bin=${SENTINEL_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet
  bin=target/release/ipfs-sentinel
fi

kubo_port=$(free_port)
python3 bench/kubo-fixtures.py "$kubo_port" 2>"$work/kubo.log" &
pids+=($!)

vm_port=$(free_port)
start_vm() {
  victoria-metrics -httpListenAddr "127.0.0.1:$vm_port" -storageDataPath "$work/vm" \
    -retentionPeriod 10y -search.latencyOffset 0s -loggerLevel ERROR >>"$work/vm.log" 2>&1 &
  vm_pid=$!
  pids+=("$vm_pid")
  wait_for "127.0.0.1:$vm_port/health"
}
start_vm

sentinel_port=$(free_port)
plain_port=$(free_port)
cat >"$work/plain.yaml" <<YAML
ipfs: {api_url: "http://127.0.0.1:$kubo_port", timeout_seconds: 2}
cluster:
  node_id: rw-bench
  monitoring:
    collection_interval_seconds: $interval_s
    external_labels: {pusher: sentinel}
YAML
# The pushing sentinel: the same, and remote_write (the last key under monitoring).
cp "$work/plain.yaml" "$work/sentinel.yaml"
cat >>"$work/sentinel.yaml" <<YAML
    remote_write:
      - url: http://127.0.0.1:$vm_port/api/v1/write
        name: vm
        queue_config: {max_samples_per_send: 2000, max_backoff: 5s}
YAML
"$bin" serve --config "$work/sentinel.yaml" \
  --listen "127.0.0.1:$sentinel_port" --data-dir "$work/data" >"$work/sentinel.log" 2>&1 &
sentinel_pid=$!
pids+=("$sentinel_pid")
"$bin" serve --config "$work/plain.yaml" \
  --listen "127.0.0.1:$plain_port" --data-dir "$work/plain-data" >"$work/plain.log" 2>&1 &
plain_pid=$!
pids+=("$plain_pid")
wait_for "127.0.0.1:$sentinel_port/-/ready"
wait_for "127.0.0.1:$plain_port/-/ready"
# The pushing sentinel is scraped as often as vmagent scrapes the plain one.
while sleep "$interval_s"; do curl -s -o /dev/null -H 'Accept-Encoding: gzip' "127.0.0.1:$sentinel_port/metrics"; done &
pids+=($!)

vmagent_port=$(free_port)
cat >"$work/scrape.yaml" <<YAML
global: {scrape_interval: ${interval_s}s, scrape_timeout: ${interval_s}s}
scrape_configs:
  - job_name: sentinel
    static_configs: [{targets: ["127.0.0.1:$plain_port"]}]
YAML
vmagent -httpListenAddr "127.0.0.1:$vmagent_port" -promscrape.config "$work/scrape.yaml" \
  -remoteWrite.url "http://127.0.0.1:$vm_port/api/v1/write" -remoteWrite.label pusher=vmagent \
  -remoteWrite.tmpDataPath "$work/vmagent-queue" -remoteWrite.maxDiskUsagePerURL 0 \
  -loggerLevel ERROR >"$work/vmagent.log" 2>&1 &
vmagent_pid=$!
pids+=("$vmagent_pid")
wait_for "127.0.0.1:$vmagent_port/health"

rss_loop() {
  while sleep 5; do
    s=$(kb "$sentinel_pid" VmRSS); v=$(kb "$vmagent_pid" VmRSS); p=$(kb "$plain_pid" VmRSS)
    echo "$s $v $p" >>"$work/rss"
  done
}
rss_loop &
pids+=($!)

metric() { # URL NAME-AND-LABELS-REGEX: sum of matching samples (0 when URL does not answer)
  { curl -sf --max-time 5 "$1/metrics" || echo "bench: no answer from $1/metrics" >&2; } | awk -v re="$2" '$0 !~ /^#/ && $1 ~ re {s += $2} END {printf "%.0f", s}'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

echo "warming up ${warm_s}s"
sleep "$warm_s"
stop_ms=$(date +%s%3N)
echo "stopping VictoriaMetrics for ${outage_s}s"
kill "$vm_pid"; wait "$vm_pid" 2>/dev/null || true
sleep "$outage_s"
echo "starting VictoriaMetrics again"
start_vm
restart_ms=$(date +%s%3N)

sentinel_caught=; vmagent_caught=
for _ in $(seq 1200); do
  now=$(date +%s%3N)
  if [ -z "$sentinel_caught" ]; then
    lag=$(metric "127.0.0.1:$sentinel_port" '^ipfs_sentinel_remote_write_lag_seconds')
    # Caught up: the cursor is back within its steady lag (a tick is final one interval after
    # it, then waits up to batch_send_deadline, 5 s, for more; and one more collection).
    [ "$lag" -le $((3 * interval_s)) ] && sentinel_caught=$(( now - restart_ms ))
  fi
  if [ -z "$vmagent_caught" ]; then
    pending=$(metric "127.0.0.1:$vmagent_port" '^vm_persistentqueue_bytes_pending')
    [ "$pending" -eq 0 ] && vmagent_caught=$(( now - restart_ms ))
  fi
  [ -n "$sentinel_caught" ] && [ -n "$vmagent_caught" ] && break
  sleep 0.5
done
sleep "$settle_s"

from_ms=$(( stop_ms - 30000 ))
to_ms=$(( restart_ms + 30000 ))
w=$(( (to_ms - from_ms) / 1000 ))
at=$(( to_ms / 1000 ))
first_value() {
  python3 -c 'import json,sys; b=sys.stdin.read(); r=json.loads(b)["data"]["result"] if b.startswith("{") and "result" in b else sys.exit("bad answer: " + b); print(int(float(r[0]["value"][1])) if r else 0)'
}
# count_samples URL SELECTOR: raw samples of SELECTOR in the window (a range selector, queried
# at its end, answers every raw sample).
count_samples() {
  curl -s "$1/api/v1/query" --data-urlencode "query=$2[${w}s]" --data-urlencode "time=$at" |
    python3 -c 'import json,sys; b=sys.stdin.read(); r=json.loads(b)["data"]["result"] if b.startswith("{") and "result" in b else sys.exit("bad answer: " + b); print(sum(len(s["values"]) for s in r))'
}
vm_query() {
  curl -s "127.0.0.1:$vm_port/api/v1/query" --data-urlencode "query=$1" --data-urlencode "time=$at" | first_value
}
sentinel_expected=$(count_samples "127.0.0.1:$sentinel_port" '{__name__=~".+"}')
sentinel_got=$(count_samples "127.0.0.1:$vm_port" '{pusher="sentinel"}')
vmagent_scrapes=$(vm_query "sum(count_over_time(up{pusher=\"vmagent\"}[${w}s]))")
vmagent_scraped=$(vm_query "sum(sum_over_time(scrape_samples_scraped{pusher=\"vmagent\"}[${w}s]))")
vmagent_got=$(count_samples "127.0.0.1:$vm_port" '{pusher="vmagent",__name__!~"up|scrape_.*"}')
vmagent_expected_scrapes=$(( w / interval_s ))
vmagent_expected=$(awk -v s="$vmagent_scraped" -v n="$vmagent_scrapes" -v e="$vmagent_expected_scrapes" \
  'BEGIN {if (n > 0 && e > n) printf "%.0f", s / n * e; else printf "%.0f", s}')

s_cpu=$(cpu_ticks "$sentinel_pid"); v_cpu=$(cpu_ticks "$vmagent_pid"); p_cpu=$(cpu_ticks "$plain_pid")
s_sent=$(metric "127.0.0.1:$sentinel_port" '^ipfs_sentinel_remote_write_samples_total\{.*result="sent"')
v_sent=$(metric "127.0.0.1:$vmagent_port" '^vmagent_remotewrite_block_size_rows_sum')
s_retries=$(metric "127.0.0.1:$sentinel_port" '^ipfs_sentinel_remote_write_retries_total')
s_expired=$(metric "127.0.0.1:$sentinel_port" '^ipfs_sentinel_remote_write_expired_seconds_total')
read -r s_peak v_peak p_peak < <(awk '$1>a {a=$1} $2>b {b=$2} $3>c {c=$3} END {print a, b, c}' "$work/rss")
read -r s_last v_last p_last < <(tail -n 1 "$work/rss")
# Mean RSS over the run, a steadier figure than one peak for a difference of two processes.
read -r s_mean v_mean p_mean < <(awk '{a+=$1; b+=$2; c+=$3; n++} END {printf "%.0f %.0f %.0f\n", a/n, b/n, c/n}' "$work/rss")

echo
echo "outage: ${outage_s}s of VictoriaMetrics down; window compared: ${w}s; interval ${interval_s}s"
printf '%-34s %14s %14s\n' "" "ipfs-sentinel" "vmagent 1.79"
printf '%-34s %14s %14s\n' "samples in window (expected)" "$sentinel_expected" "$vmagent_expected"
printf '%-34s %14s %14s\n' "samples in window (in VM)" "$sentinel_got" "$vmagent_got"
printf '%-34s %14s %14s\n' "samples lost" "$(( sentinel_expected - sentinel_got ))" "$(( vmagent_expected - vmagent_got ))"
printf '%-34s %14s %14s\n' "catch-up after restart (ms)" "${sentinel_caught:-never}" "${vmagent_caught:-never}"
printf '%-34s %14s %14s\n' "VmRSS peak / last (kB)" "$s_peak / $s_last" "$v_peak / $v_last"
printf '%-34s %14s %14s\n' "samples sent (whole run)" "$s_sent" "$v_sent"
printf '%-34s %14s %14s\n' "CPU ms (whole run)" "$(( s_cpu * 1000 / tick ))" "$(( v_cpu * 1000 / tick ))"
printf '%-34s %14s %14s\n' "CPU us per sample sent" \
  "$(awk -v c="$s_cpu" -v n="$s_sent" -v t="$tick" 'BEGIN {printf "%.2f", c * 1e6 / t / n}')" \
  "$(awk -v c="$v_cpu" -v n="$v_sent" -v t="$tick" 'BEGIN {printf "%.2f", c * 1e6 / t / n}')"
echo "sentinel retries: $s_retries, expired seconds: $s_expired"
echo
echo "marginal cost of remote write: the pushing sentinel less the same one without remote_write"
printf '%-34s %14s %14s %14s\n' "" "pushing" "not pushing" "difference"
printf '%-34s %14s %14s %14s\n' "VmRSS mean (kB)" "$s_mean" "$p_mean" "$(( s_mean - p_mean ))"
printf '%-34s %14s %14s %14s\n' "VmRSS peak (kB)" "$s_peak" "$p_peak" "$(( s_peak - p_peak ))"
printf '%-34s %14s %14s %14s\n' "CPU ms (whole run)" "$(( s_cpu * 1000 / tick ))" "$(( p_cpu * 1000 / tick ))" "$(( (s_cpu - p_cpu) * 1000 / tick ))"
echo "remote write, per sample sent: $(awk -v c="$(( s_cpu - p_cpu ))" -v n="$s_sent" -v t="$tick" 'BEGIN {printf "%.2f", c * 1e6 / t / n}') us of CPU (vmagent: $(awk -v c="$v_cpu" -v n="$v_sent" -v t="$tick" 'BEGIN {printf "%.2f", c * 1e6 / t / n}') us)"
echo "remote write, RSS: $(awk -v a="$(( s_mean - p_mean ))" -v b="$v_mean" 'BEGIN {printf "%.2f", a/b}') of vmagent's mean RSS ($v_mean kB)"
if [ $(( sentinel_expected - sentinel_got )) -ne 0 ]; then
  echo
  echo "ticks with samples missing in VictoriaMetrics (seconds from the stop / from the restart):"
  curl -s "127.0.0.1:$sentinel_port/api/v1/query" --data-urlencode "query={__name__=~\".+\"}[${w}s]" --data-urlencode "time=$at" >"$work/expected.json"
  curl -s "127.0.0.1:$vm_port/api/v1/query" --data-urlencode "query={pusher=\"sentinel\"}[${w}s]" --data-urlencode "time=$at" >"$work/got.json"
  python3 - "$work/expected.json" "$work/got.json" "$stop_ms" "$restart_ms" <<'PY'
import collections, json, sys
def per_tick(path):
    c = collections.Counter()
    for s in json.load(open(path))["data"]["result"]:
        for t, _ in s["values"]:
            c[round(float(t) * 1000)] += 1
    return c
want, got = per_tick(sys.argv[1]), per_tick(sys.argv[2])
stop, restart = int(sys.argv[3]), int(sys.argv[4])
for t in sorted(want):
    if want[t] != got.get(t, 0):
        print(f"  {t}: {want[t] - got.get(t, 0)} of {want[t]} missing ({(t - stop) / 1000:+.1f} s / {(t - restart) / 1000:+.1f} s)")
PY
  grep -i "remote" "$work/sentinel.log" | tail -n 20 || true
fi
