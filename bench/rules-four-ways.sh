#!/usr/bin/env bash
# Rules, like for like: the shared workload (../shared/bench/rule-workload.py) evaluated four
# ways over the same samples (bench/rule-samples.py: one file, back-filled into Prometheus with
# promtool, imported into VictoriaMetrics with its timestamps, read into the sentinel's
# history), interleaved, PASSES times:
#   Prometheus 2.42 over the back-filled blocks, evaluating at the wall clock;
#   vmalert 1.79 against VictoriaMetrics 1.79 holding the samples;
#   the sentinel's engine over its history (benches/rules_four_ways.rs), at fixed times;
#   the sentinel with VictoriaMetrics as its remote datasource, at the same fixed times.
# The samples are flat (gauges) or straight lines (counters) around the evaluation times, so
# wall-clock and fixed evaluation times see the same values. Then compares the four answers.
#
# Usage: bash bench/rules-four-ways.sh
#   SCALE=1 (series and rules x SCALE: 20*SCALE instances, 10*SCALE groups of 100 rules)
#   ROUNDS=8 PASSES=2 FUTURE=80 (ticks of 15 s after now in the samples) KEEP=DIR (keep the answers)
#   HARNESS=target/release/deps/rules_four_ways-HASH (skip the cargo build)
#   ENGINES="prometheus vmalert sentinel remote" (the passes to run; vmalert's takes longest)
#   WATCH_MINUTES=20 (how long Prometheus and vmalert are watched at most: raise it at SCALE 4)
#   From SCALE 8 on the answers are compared as sorted lines (compare-answers.py would need tens of GB)
# Needs Debian's prometheus, promtool and victoria-metrics (vmalert), python3.
. "$(dirname "$0")/lib.sh"
SCALE=${SCALE:-1} ROUNDS=${ROUNDS:-8} PASSES=${PASSES:-2} FUTURE=${FUTURE:-80}
ENGINES=${ENGINES:-prometheus vmalert sentinel remote}
[ -n "${KEEP:-}" ] && mkdir -p "$KEEP"
# HARNESS names an already built benches/rules_four_ways.rs binary (skips cargo)
if [ -z "${HARNESS:-}" ]; then
  CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2} cargo bench --bench rules_four_ways --no-run --quiet 2>/dev/null
fi
harness=${HARNESS:-$(ls -t target/release/deps/rules_four_ways-* | grep -v '\.d$' | head -1)}
log() { echo "[$(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)] $*"; }

log "workload x$SCALE"
# ../shared from the main tree, ../../shared from a worktree under /work/wt
workload=${WORKLOAD:-$(ls ../shared/bench/rule-workload.py ../../shared/bench/rule-workload.py 2>/dev/null | head -1 || true)}
python3 "$workload" "$work/metrics" "$work/rules.yml" \
  --instances $((20 * SCALE)) --groups $((10 * SCALE))
python3 bench/rule-samples.py "$work/metrics" "$work" --past 40 --future "$FUTURE"
. "$work/times.env"
wants() { [[ " $ENGINES " == *" $1 "* ]]; }
if wants prometheus; then
  log "promtool back-fill"
  promtool tsdb create-blocks-from openmetrics "$work/samples.om" "$work/tsdb" >/dev/null
fi
rm "$work/samples.om"

vm_port=$(free_port)
victoria-metrics -storageDataPath="$work/vm" -httpListenAddr="127.0.0.1:$vm_port" \
  -retentionPeriod=100y -loggerLevel=ERROR >"$work/vm.log" 2>&1 &
vm_pid=$!; pids+=("$vm_pid")
wait_for "http://127.0.0.1:$vm_port/health"
log "VictoriaMetrics import"
curl -sf --data-binary "@$work/samples.prom" "http://127.0.0.1:$vm_port/api/v1/import/prometheus"
curl -sf "http://127.0.0.1:$vm_port/internal/force_flush"
curl -sf "http://127.0.0.1:$vm_port/internal/force_merge" # no background merge in the rounds
sleep 5
imported=$(curl -sf "http://127.0.0.1:$vm_port/api/v1/query" --data-urlencode 'query=count({__name__=~"bench_.*"})' \
  --data-urlencode "time=$((FIRST_EVAL_MS / 1000))" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["result"][0]["value"][1])')
log "VictoriaMetrics holds $imported series at the first evaluation"

# a sink for vmalert's notifications (1.79 requires a notifier)
sink_port=$(free_port)
python3 -m http.server "$sink_port" --bind 127.0.0.1 --directory "$work" >/dev/null 2>&1 &
pids+=($!)

prometheus_pass() {
  local port; port=$(free_port)
  printf 'global: {evaluation_interval: 15s}\nrule_files: [%s]\n' "$work/rules.yml" >"$work/prometheus.yml"
  prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --storage.tsdb.retention.time=100y --web.listen-address="127.0.0.1:$port" --log.level=error \
    >"$work/prometheus.log" 2>&1 &
  local pid=$!; pids+=("$pid")
  wait_for "http://127.0.0.1:$port/-/ready"
  log "$(python3 bench/rule-engine-watch.py prometheus "http://127.0.0.1:$port" "$pid" "$ROUNDS" "$work/answer-prometheus")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

vmalert_pass() {
  local port; port=$(free_port)
  vmalert -rule="$work/rules.yml" -datasource.url="http://127.0.0.1:$vm_port" \
    -notifier.url="http://127.0.0.1:$sink_port" -evaluationInterval=15s \
    -httpListenAddr="127.0.0.1:$port" -loggerLevel=ERROR >"$work/vmalert.log" 2>&1 &
  local pid=$!; pids+=("$pid")
  wait_for "http://127.0.0.1:$port/metrics"
  log "$(python3 bench/rule-engine-watch.py vmalert "http://127.0.0.1:$port" "$pid,$vm_pid" "$ROUNDS" "$work/answer-vmalert")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

sentinel_pass() {
  log "$(SAMPLES="$work/samples.prom" RULES="$work/rules.yml" FIRST_EVAL_MS=$FIRST_EVAL_MS ROUNDS=$ROUNDS \
    ANSWER_OUT="$work/answer-sentinel" "$harness")"
}

remote_pass() {
  # VictoriaMetrics leaves out samples newer than its -search.latencyOffset (30 s) before the
  # wall clock; the fixed evaluation times start at the samples' "now", so wait until the last
  # of them is further back than that, as it is when the other engines ran first
  local last_ms=$((FIRST_EVAL_MS + (ROUNDS - 1) * 15000 + 31000)) now_ms
  now_ms=$(date +%s%3N)
  [ "$now_ms" -lt "$last_ms" ] && sleep "$(((last_ms - now_ms) / 1000 + 1))"
  echo 5 >"/proc/$vm_pid/clear_refs"
  log "$(SAMPLES="$work/samples.prom" RULES="$work/rules.yml" FIRST_EVAL_MS=$FIRST_EVAL_MS ROUNDS=$ROUNDS \
    ANSWER_OUT="$work/answer-remote" DATASOURCE_URL="http://127.0.0.1:$vm_port" ALSO_PIDS=$vm_pid "$harness") (VictoriaMetrics VmHWM $(kb "$vm_pid" VmHWM) kB)"
}

for pass in $(seq "$PASSES"); do
  log "pass $pass"
  for engine in $ENGINES; do "${engine}_pass"; done
done
[ -n "${KEEP:-}" ] && cp "$work"/answer-* "$work/rules.yml" "$KEEP/"
answers=()
for engine in sentinel prometheus vmalert remote; do
  [ -s "$work/answer-$engine" ] && answers+=("$engine=$work/answer-$engine")
done
if [ "$SCALE" -lt 8 ]; then
  python3 bench/compare-answers.py --rules "$work/rules.yml" "${answers[@]}" || true
else
  # ten million alerts do not fit compare-answers.py's sets: the same lines, sorted, or how many differ
  first=${answers[0]#*=}
  for entry in "${answers[@]:1}"; do
    sort -S 2G "$first" >"$work/a.sorted"; sort -S 2G "${entry#*=}" >"$work/b.sorted"
    log "${answers[0]%%=*} against ${entry%%=*}: $(comm -12 "$work/a.sorted" "$work/b.sorted" | wc -l) lines the same," \
      "$(comm -23 "$work/a.sorted" "$work/b.sorted" | wc -l) only in ${answers[0]%%=*}, $(comm -13 "$work/a.sorted" "$work/b.sorted" | wc -l) only in ${entry%%=*}"
  done
fi
