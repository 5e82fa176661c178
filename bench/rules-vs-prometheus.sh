#!/usr/bin/env bash
# Rule evaluation side by side, in one run: the workload of ../shared/bench/rule-workload.py
# (10,000 series, 1,000 alerting rules) evaluated by a real Prometheus 2.42 scraping the series
# (sum(prometheus_rule_group_last_duration_seconds) per round, its VmRSS) and by ipfs-sentinel's
# engine over a history of the same series (cargo bench --bench rules: per round, VmHWM).
# Usage: bash bench/rules-vs-prometheus.sh   (needs Debian's prometheus and python3)
. "$(dirname "$0")/lib.sh"

python3 ../shared/bench/rule-workload.py "$work/metrics" "$work/rules.yml"
static_port=$(free_port)
mkdir -p "$work/static" && cp "$work/metrics" "$work/static/metrics"
python3 -m http.server "$static_port" --bind 127.0.0.1 --directory "$work/static" >/dev/null 2>&1 &
pids+=($!)
prom_port=$(free_port)
cat > "$work/prometheus.yml" <<YAML
global: {scrape_interval: 15s, evaluation_interval: 15s}
rule_files: ['$work/rules.yml']
scrape_configs:
  - job_name: workload
    honor_labels: true
    static_configs: [{targets: ['127.0.0.1:$static_port']}]
  - job_name: prometheus
    static_configs: [{targets: ['127.0.0.1:$prom_port']}]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$work/prometheus.log" 2>&1 &
prom_pid=$!
pids+=("$prom_pid")
echo "Prometheus scrapes the workload; waiting 6 minutes for its 5m windows to fill and rounds to settle..."
sleep 360
q() { curl -sf "127.0.0.1:$prom_port/api/v1/query" --data-urlencode "query=$1" | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")'; }
rounds=()
for _ in 1 2 3 4 5; do rounds+=("$(q 'sum(prometheus_rule_group_last_duration_seconds)')"); sleep 15; done
prom_rss=$(awk '$1=="VmRSS:" {print $2}' "/proc/$prom_pid/status")
echo "Prometheus 2.42: per round (s): ${rounds[*]}; VmRSS ${prom_rss} kB; alerts firing: $(q 'count(ALERTS{alertstate="firing"})')"
WORKLOAD_METRICS="$work/metrics" WORKLOAD_RULES="$work/rules.yml" cargo bench --quiet --bench rules
