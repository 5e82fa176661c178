#!/usr/bin/env bash
# How the local rule engine's cost grows, and before/after in one run: the shared workload
# (../shared/bench/rule-workload.py) at each scale in SCALES (series and rules x N: 20*N
# instances, 10*N groups of 100 rules), its samples 40 ticks before and 4 after the first
# evaluation (bench/rule-samples.py), evaluated by each harness in HARNESSES
# (benches/rules_four_ways.rs binaries, e.g. one built from the old tree and one from this)
# in turn at each scale. A watchdog stops a harness whose RSS passes MAX_RSS_MB, to protect
# a shared machine; its line then says so.
#
# Usage: HARNESSES="old=/tmp/harness-old new=target/release/deps/rules_four_ways-HASH" \
#          SCALES="1 2 4" ROUNDS=8 MAX_RSS_MB=6000 bash bench/rules-growth.sh
# Prints each harness's figures line (CPU s per round, wall, alerts, peak RSS over the rounds)
# with the time and load average, and whether the harnesses' answers (rule, labels, state)
# are identical at each scale.
. "$(dirname "$0")/lib.sh"
SCALES=${SCALES:-1 2} ROUNDS=${ROUNDS:-8} MAX_RSS_MB=${MAX_RSS_MB:-6000}
: "${HARNESSES:?name=path of each benches/rules_four_ways.rs binary to run}"
log() { echo "[$(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)] $*"; }
workload=${WORKLOAD:-$(ls ../shared/bench/rule-workload.py ../../shared/bench/rule-workload.py 2>/dev/null | head -1 || true)}

# run_capped NAME HARNESS DIR: runs the harness over DIR's samples, stopping it past MAX_RSS_MB.
run_capped() {
  local name=$1 harness=$2 dir=$3 peak=0
  SAMPLES="$dir/samples.prom" RULES="$dir/rules.yml" FIRST_EVAL_MS=$FIRST_EVAL_MS ROUNDS=$ROUNDS \
    ANSWER_OUT="$dir/answer-$name" "$harness" >"$dir/out-$name" 2>&1 &
  local pid=$!; pids+=("$pid")
  while kill -0 "$pid" 2>/dev/null; do
    local rss; rss=$(kb "$pid" VmRSS 2>/dev/null || echo 0)
    [ "${rss:-0}" -gt "$peak" ] && peak=$rss
    if [ "${rss:-0}" -gt $((MAX_RSS_MB * 1024)) ]; then
      kill "$pid"; wait "$pid" 2>/dev/null || true
      log "$name: stopped at $((rss / 1024)) MB RSS (over MAX_RSS_MB=$MAX_RSS_MB)"
      return 0
    fi
    sleep 0.5
  done
  wait "$pid" || true
  log "$name: $(cat "$dir/out-$name") (highest RSS seen by the watchdog, loading included: $((peak / 1024)) MB)"
}

for n in $SCALES; do
  dir="$work/x$n"; mkdir -p "$dir"
  python3 "$workload" "$dir/metrics" "$dir/rules.yml" --instances $((20 * n)) --groups $((10 * n)) >/dev/null
  python3 bench/rule-samples.py "$dir/metrics" "$dir" --past 40 --future 4 >/dev/null
  rm -f "$dir/samples.om"
  . "$dir/times.env"
  log "scale x$n"
  names=()
  for entry in $HARNESSES; do
    name=${entry%%=*}; names+=("$name")
    run_capped "$name" "${entry#*=}" "$dir"
  done
  first=${names[0]}
  for name in "${names[@]:1}"; do
    if [ -s "$dir/answer-$first" ] && [ -s "$dir/answer-$name" ] &&
      cmp -s <(sort "$dir/answer-$first") <(sort "$dir/answer-$name"); then
      log "x$n: $first and $name gave the same answer ($(wc -l <"$dir/answer-$name") alerts)"
    else
      log "x$n: $first and $name answers differ or one is missing"
    fi
  done
done
