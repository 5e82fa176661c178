#!/usr/bin/env bash
# History bytes per sample against VictoriaMetrics 1.79 and Prometheus 2.42 on the same
# recordings, in one run: tests/fixtures/recording.prom.gz and every recording in RECORDINGS
# (colon-separated, bench/record-metrics.py's shape). Each is imported with its timestamps into
# a fresh VictoriaMetrics (/api/v1/import/prometheus, then /internal/force_flush and
# /internal/force_merge; its data dir measured when it stops changing, and exported again to
# count values that came back different) and into Prometheus blocks (promtool tsdb
# create-blocks-from openmetrics); the sentinel's store and Gorilla XOR are
# `cargo bench --bench history` (which also decodes its blocks and compares every sample).
# Usage: RECORDINGS=/path/a.prom.gz bash bench/bytes-per-sample.sh
. "$(dirname "$0")/lib.sh"
recordings=("$PWD/tests/fixtures/recording.prom.gz")
IFS=: read -r -a extra <<<"${RECORDINGS:-}"
recordings+=("${extra[@]}")

bytes() { du -sb "$1" | cut -f1; }
for rec in "${recordings[@]}"; do
  [ -n "$rec" ] || continue
  name=$(basename "$rec" .prom.gz)
  out="$work/$name"
  counts=$(python3 bench/recording-to.py "$rec" "$out")
  samples=${counts%% samples*}
  promtool tsdb create-blocks-from openmetrics "$out.om" "$out-tsdb" >/dev/null
  prom_all=$(bytes "$out-tsdb")
  prom_chunks=$(find "$out-tsdb" -path '*chunks*' -type f -printf '%s\n' | awk '{s+=$1} END {print s}')

  port=$(free_port)
  victoria-metrics -storageDataPath="$out-vm" -httpListenAddr="127.0.0.1:$port" -retentionPeriod=100y \
    -loggerLevel=ERROR >"$out-vm.log" 2>&1 &
  vm_pid=$!; pids+=("$vm_pid")
  wait_for "http://127.0.0.1:$port/health"
  curl -sf --data-binary "@$out.prom" "http://127.0.0.1:$port/api/v1/import/prometheus"
  curl -sf "http://127.0.0.1:$port/internal/force_flush"
  curl -sf "http://127.0.0.1:$port/internal/force_merge"
  last=0
  for _ in $(seq 30); do
    sleep 2
    now=$(bytes "$out-vm/data")
    [ "$now" = "$last" ] && break
    last=$now
  done
  # lossless? export everything and compare with the recording's values
  curl -sf "http://127.0.0.1:$port/api/v1/export" -d 'match[]={__name__!=""}' >"$out-vm.export"
  lossy=$(python3 - "$out.prom" "$out-vm.export" <<'PY'
import json, sys
src = {}
for line in open(sys.argv[1]):
    s, v, t = line.rsplit(" ", 2)
    src[(s, int(t))] = float(v)
got = {}
for line in open(sys.argv[2]):
    o = json.loads(line)
    m = o["metric"]
    name = m.pop("__name__")
    labels = ",".join(f'{k}="{v}"' for k, v in m.items())
    for t, v in zip(o["timestamps"], o["values"]):
        got[(name, tuple(sorted(m.items())), t)] = float(v) if v is not None else float("nan")
def key(s):
    name, _, rest = s.partition("{")
    labels = []
    for part in rest.rstrip("}").split('",'):
        if "=" in part:
            k, v = part.split('="', 1)
            labels.append((k, v.rstrip('"')))
    return name, tuple(sorted(labels))
differ = missing = 0
worst = (0.0, None)
for (s, t), v in src.items():
    g = got.get(key(s) + (t,))
    if g is None:
        missing += 1
    elif not (g == v or (g != g and v != v)):
        differ += 1
        rel = abs(g - v) / max(abs(v), 1e-300)
        if rel > worst[0]:
            worst = (rel, f"{s} {v!r} came back {g!r}")
print(f"{differ} values differ (largest relative error {worst[0]:.2g}: {worst[1]}), {missing} missing of {len(src)}")
PY
)
  kill "$vm_pid"; wait "$vm_pid" 2>/dev/null || true
  vm_all=$(bytes "$out-vm"); vm_data=$(bytes "$out-vm/data"); vm_index=$(bytes "$out-vm/indexdb")
  echo "$name: $counts"
  awk -v n="$samples" -v a="$prom_all" -v c="$prom_chunks" 'BEGIN {printf "  Prometheus 2.42 blocks: %d bytes (%.3f per sample), chunks alone %d (%.3f)\n", a, a/n, c, c/n}'
  awk -v n="$samples" -v a="$vm_all" -v d="$vm_data" -v i="$vm_index" 'BEGIN {printf "  VictoriaMetrics 1.79 dir: %d bytes (%.3f per sample), data/ %d (%.3f), indexdb/ %d (%.3f)\n", a, a/n, d, d/n, i, i/n}'
  echo "  VictoriaMetrics export against the recording: $lossy"
done
RECORDINGS="${RECORDINGS:-}" cargo bench --quiet --bench history 2>/dev/null | grep -v '^append\|^24 h\|^hourly'
