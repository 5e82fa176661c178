#!/usr/bin/env bash
# The scrape path side by side, in one run: ipfs-sentinel `serve` (release build, a full 24 h
# history of 200 series loaded from its data dir as `cargo bench --bench history` writes it,
# collecting from a Kubo stand-in that replays tests/fixtures/kubo), Debian's
# prometheus-node-exporter, and nginx serving a copy of the sentinel's own /metrics body as a
# static file with one worker (the practical limit for those bytes).
#
# For each: requests/s, p50 and p99 latency and errors at 1, 16 and 200 connections (wrk
# --latency, no Accept-Encoding: plain text, as curl gets), VmRSS/VmHWM after the load, and CPU:
# the sentinel's per collection (utime+stime over a quiet period / collections in it) and each
# server's per request at 1 connection (CPU over the run / requests: node_exporter collects
# on every scrape, so this is its CPU per scrape). Ratios and the issue's targets at the end.
#
# RUNS rounds (default 5), interleaved: each round runs every server at every connection count
# once, so the three share the same load; the tables give the median of the rounds and the
# range (the noise band), and each ratio is the median of the rounds' ratios.
#
# Usage: bash bench/scrape-vs-node-exporter-nginx.sh
#   env: RUNS (5), SECONDS_PER_RUN (10), QUIET_SECONDS (60), INTERVAL_SECONDS (2, the sentinel's
#   collection interval during the run)
# Installs wrk, nginx-light and prometheus-node-exporter with apt when missing. Every server
# listens on a free 127.0.0.1 port and is stopped on exit.
. "$(dirname "$0")/lib.sh"

runs=${RUNS:-5}
run_s=${SECONDS_PER_RUN:-10}
quiet_s=${QUIET_SECONDS:-60}
interval_s=${INTERVAL_SECONDS:-2}

apt_install wrk wrk
apt_install nginx nginx-light
apt_install prometheus-node-exporter prometheus-node-exporter

# the release binary; built when missing
[ -x target/release/ipfs-sentinel ] || cargo build --release --quiet
echo "writing a full 24 h history of 200 series (cargo bench --bench history)..."
BENCH_DATA_DIR="$work/data" cargo bench --quiet --bench history >"$work/history-bench.log"

kubo_port=$(free_port)
# Under full load the stand-in can answer late; the sentinel then times out and hangs up.
python3 bench/kubo-fixtures.py "$kubo_port" 2>"$work/kubo.log" &
pids+=($!)
cat >"$work/sentinel.yaml" <<YAML
ipfs: {api_url: "http://127.0.0.1:$kubo_port", timeout_seconds: 2}
cluster:
  node_id: scrape-bench
  monitoring: {collection_interval_seconds: $interval_s}
YAML
sentinel_port=$(free_port)
target/release/ipfs-sentinel serve --config "$work/sentinel.yaml" \
  --listen "127.0.0.1:$sentinel_port" --data-dir "$work/data" >"$work/sentinel.log" 2>&1 &
sentinel_pid=$!
pids+=("$sentinel_pid")

node_exporter_port=$(free_port)
prometheus-node-exporter --web.listen-address="127.0.0.1:$node_exporter_port" --log.level=warn \
  >"$work/node-exporter.log" 2>&1 &
node_exporter_pid=$!
pids+=("$node_exporter_pid")

wait_for "127.0.0.1:$sentinel_port/-/ready"
wait_for "127.0.0.1:$node_exporter_port/metrics"
mkdir -p "$work/static"
curl -sf "127.0.0.1:$sentinel_port/metrics" >"$work/static/metrics"
chmod -R a+rX "$work"
nginx_port=$(free_port)
cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $work/nginx-body;
  default_type "text/plain; version=0.0.4; charset=utf-8";
  server { listen 127.0.0.1:$nginx_port; root $work/static; }
}
NGINX
nginx -c "$work/nginx.conf" -p "$work" &
nginx_pid=$!
pids+=("$nginx_pid")
wait_for "127.0.0.1:$nginx_port/metrics"

# cpu_s PID...: utime + stime of the processes so far, in seconds.
cpu_s() {
  local ticks=0 t
  for p in "$@"; do
    t=$(sed 's/^.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')
    ticks=$((ticks + t))
  done
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz}'
}
nginx_pids() { echo "$nginx_pid" $(pgrep -P "$nginx_pid"); }
rss_kb() { local s=0; for p in "$@"; do s=$((s + $(kb "$p" VmRSS))); done; echo "$s"; }

body_bytes=$(wc -c <"$work/static/metrics")
node_exporter_bytes=$(curl -sf "127.0.0.1:$node_exporter_port/metrics" | wc -c)
echo "bodies: sentinel $body_bytes bytes (nginx serves the same file), node_exporter $node_exporter_bytes bytes"

echo "quiet period: ${quiet_s} s without scrapes, the sentinel collecting every ${interval_s} s..."
cpu0=$(cpu_s "$sentinel_pid")
sleep "$quiet_s"
cpu1=$(cpu_s "$sentinel_pid")
# The collections in the quiet period: the history's raw points of one series over it.
collections=$(curl -sf -G "127.0.0.1:$sentinel_port/api/v1/export" --data-urlencode format=csv \
  --data-urlencode 'match=ipfs_sentinel_collector_success{collector="node"}' \
  --data-urlencode "range=${quiet_s}s" | tail -n +2 | wc -l)
per_collection=$(awk -v a="$cpu0" -v b="$cpu1" -v n="$collections" 'BEGIN {printf "%.4f", (n > 0 ? (b - a) / n : 0)}')
echo "sentinel: $(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN {printf "%.2f", b - a}') CPU s over $collections collections"

# ms VALUE: a wrk latency (us, ms or s) in milliseconds.
ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /[0-9]s$/) n *= 1000; printf "%.3f", n }'; }
declare -A rps p50 p99 errors cpu_per_request
# med "a b c": the median of the numbers; band "a b c": min-max.
med() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
band() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk 'NR==1 {a=$1} {b=$1} END {print a "-" b}'; }
for run in $(seq "$runs"); do
  echo "round $run of $runs (load $(cut -d' ' -f1-3 /proc/loadavg))"
  for c in 1 16 200; do
    for name in sentinel nginx node_exporter; do
      port_var=${name}_port
      case $name in
        sentinel) procs=("$sentinel_pid") ;;
        nginx) read -r -a procs <<<"$(nginx_pids)" ;;
        node_exporter) procs=("$node_exporter_pid") ;;
      esac
      before=$(cpu_s "${procs[@]}")
      out=$(wrk -t "$((c < 2 ? 1 : 2))" -c "$c" -d "${run_s}s" --timeout 5s --latency \
        "http://127.0.0.1:${!port_var}/metrics")
      after=$(cpu_s "${procs[@]}")
      requests=$(awk '/requests in/ {print $1}' <<<"$out")
      rps[$name,$c]+=" $(awk '/^Requests\/sec:/ {printf "%.0f", $2}' <<<"$out")"
      p50[$name,$c]+=" $(ms "$(awk '$1=="50%" {print $2}' <<<"$out")")"
      p99[$name,$c]+=" $(ms "$(awk '$1=="99%" {print $2}' <<<"$out")")"
      errors[$name,$c]+=" $(awk '/Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10}
        /Non-2xx/ {n += $NF} END {print n + 0}' <<<"$out")"
      cpu_per_request[$name,$c]+=" $(awk -v a="$before" -v b="$after" -v n="$requests" \
        'BEGIN {printf "%.6f", (n > 0 ? (b - a) / n : 0)}')"
    done
  done
done

printf '\n%-14s %5s %10s %16s %9s %9s %10s %14s\n' server conns "req/s" "req/s band" "p50 ms" "p99 ms" "errors" "CPU s/request"
for name in sentinel nginx node_exporter; do
  for c in 1 16 200; do
    printf '%-14s %5s %10s %16s %9s %9s %10s %14s\n' "$name" "$c" "$(med "${rps[$name,$c]}")" "$(band "${rps[$name,$c]}")" \
      "$(med "${p50[$name,$c]}")" "$(med "${p99[$name,$c]}")" "$(band "${errors[$name,$c]}")" "$(med "${cpu_per_request[$name,$c]}")"
  done
done
# ratios: per round, then the median and range over the rounds
ratios() { paste -d' ' <(tr ' ' '\n' <<<"$1" | grep .) <(tr ' ' '\n' <<<"$2" | grep .) | awk '{printf "%.2f ", ($2 > 0 ? $1 / $2 : 0)}'; }
echo
for c in 1 16 200; do
  r=$(ratios "${rps[sentinel,$c]}" "${rps[nginx,$c]}")
  echo "sentinel / nginx req/s at $c connections, per round: $r-> median $(med "$r"), band $(band "$r")"
done
for name in sentinel nginx node_exporter; do for c in 1 16 200; do
  rps[$name,$c]=$(med "${rps[$name,$c]}"); errors[$name,$c]=$(tr ' ' '\n' <<<"${errors[$name,$c]}" | awk '{s+=$1} END {print s+0}')
  cpu_per_request[$name,$c]=$(med "${cpu_per_request[$name,$c]}")
done; done

sentinel_rss=$(kb "$sentinel_pid" VmRSS)
node_exporter_rss=$(kb "$node_exporter_pid" VmRSS)
printf '\n%-14s %10s %10s\n' server "VmRSS kB" "VmHWM kB"
printf '%-14s %10s %10s\n' sentinel "$sentinel_rss" "$(kb "$sentinel_pid" VmHWM)"
printf '%-14s %10s %10s\n' node_exporter "$node_exporter_rss" "$(kb "$node_exporter_pid" VmHWM)"
printf '%-14s %10s %10s\n' "nginx (all)" "$(rss_kb $(nginx_pids))" "-"
samples=$(curl -sf "127.0.0.1:$sentinel_port/metrics" | awk '$1=="ipfs_sentinel_history_samples" {print $2}')
echo "(the sentinel holds $samples samples of history)"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}'; }
node_exporter_per_scrape=${cpu_per_request[node_exporter,1]}
echo
echo "sentinel / nginx, req/s:         1: $(ratio "${rps[sentinel,1]}" "${rps[nginx,1]}")  16: $(ratio "${rps[sentinel,16]}" "${rps[nginx,16]}")  200: $(ratio "${rps[sentinel,200]}" "${rps[nginx,200]}")"
echo "sentinel / node_exporter, req/s: 1: $(ratio "${rps[sentinel,1]}" "${rps[node_exporter,1]}")  16: $(ratio "${rps[sentinel,16]}" "${rps[node_exporter,16]}")  200: $(ratio "${rps[sentinel,200]}" "${rps[node_exporter,200]}")"
echo "sentinel / node_exporter, VmRSS: $(ratio "$sentinel_rss" "$node_exporter_rss")"
echo "sentinel CPU per collection / node_exporter CPU per scrape: $per_collection s / $node_exporter_per_scrape s = $(ratio "$per_collection" "$node_exporter_per_scrape")"

verdict() { if awk "BEGIN {exit !($1)}"; then echo met; else echo MISSED; fi; }
echo
echo "targets:"
echo "  req/s at 16 connections at least nginx's:          $(verdict "${rps[sentinel,16]} >= ${rps[nginx,16]}")"
echo "  zero errors at 200 connections:                     $(verdict "${errors[sentinel,200]} == 0")"
echo "  VmRSS below node_exporter's with a full history:    $(verdict "$sentinel_rss < $node_exporter_rss")"
echo "  CPU per collection at most node_exporter's per scrape: $(verdict "$per_collection <= $node_exporter_per_scrape")"
