#!/usr/bin/env python3
"""Watches Prometheus or vmalert evaluate the rule workload, for bench/rules-four-ways.sh.

After one full round (every group evaluated at least once) it reads the engine's own metrics
every interval for ROUNDS rounds: per round, the sum of the groups' last durations and the
longest one (Prometheus: prometheus_rule_group_last_duration_seconds; vmalert: each group's
vmalert_iteration_duration_seconds_sum over its _count, its mean iteration so far), going on
past ROUNDS windows until two rounds were evaluated in them; the CPU seconds
(utime+stime from /proc/PID/stat) of PIDS over the window divided by the rounds evaluated in it
(group iterations / groups); peak RSS (VmHWM, reset with clear_refs before the window) of PIDS
summed. Then writes the engine's /api/v1/alerts as the answer: one {"rule", "labels", "state"}
JSON object a line.

usage: rule-engine-watch.py prometheus|vmalert BASE_URL PIDS(comma) ROUNDS ANSWER_OUT
WATCH_MINUTES (default 20) bounds the wait for the first full round and the windows after it:
raise it at the larger scales, where one vmalert round takes minutes.
"""
import json
import os
import re
import sys
import time
import urllib.request

kind, base, pids, rounds, answer_out = sys.argv[1], sys.argv[2], sys.argv[3].split(","), int(sys.argv[4]), sys.argv[5]
INTERVAL = 15
WATCH_MINUTES = float(os.environ.get("WATCH_MINUTES", "20"))
LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)')


def metrics():
    out = {}
    for line in urllib.request.urlopen(base + "/metrics", timeout=300).read().decode().splitlines():
        m = LINE.match(line)
        if not m:
            continue
        group = re.search(r'(?:rule_group|group)="([^"]*)"', m.group(2) or "")
        out.setdefault(m.group(1), {})[group.group(1) if group else ""] = float(m.group(3))
    return out


def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / 100.0


def hwm(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def iterations(m):
    if kind == "prometheus":
        return sum(m.get("prometheus_rule_group_iterations_total", {}).values()) - sum(
            m.get("prometheus_rule_group_iterations_missed_total", {}).values())
    return sum(m.get("vmalert_iteration_duration_seconds_count", {}).values())


def groups(m):
    if kind == "prometheus":
        return len(m.get("prometheus_rule_group_rules", {}))
    return len(m.get("vmalert_iteration_duration_seconds_count", {}))


# wait until every group has finished one evaluation
deadline = time.time() + WATCH_MINUTES * 60
while True:
    try:
        m = metrics()
        n = groups(m)
        done = (m.get("prometheus_rule_group_last_evaluation_timestamp_seconds", {}) if kind == "prometheus"
                else m.get("vmalert_iteration_duration_seconds_count", {}))
        if n and len(done) == n and all(v > 0 for v in done.values()):
            break
    except OSError:
        pass
    if time.time() > deadline:
        sys.exit(f"{kind} at {base}: no full round within {WATCH_MINUTES:g} minutes (raise WATCH_MINUTES)")
    time.sleep(1)

for p in pids:
    open(f"/proc/{p}/clear_refs", "w").write("5")
cpu0 = sum(cpu(p) for p in pids)
it0 = iterations(m)
prev = m
sums, maxes = [], []
windows = 0
# ROUNDS windows, and on until at least two rounds were evaluated in them (a loaded engine
# takes longer than its interval), for at most WATCH_MINUTES
while windows < rounds or ((iterations(m) - it0) / max(1, groups(m)) < 2 and windows < WATCH_MINUTES * 60 / INTERVAL):
    windows += 1
    time.sleep(INTERVAL)
    m = metrics()
    if kind == "prometheus":
        d = list(m["prometheus_rule_group_last_duration_seconds"].values())
    else:
        s, c = m["vmalert_iteration_duration_seconds_sum"], m["vmalert_iteration_duration_seconds_count"]
        d = [s[g] / max(1.0, c[g]) for g in s]  # each group's mean iteration so far
    sums.append(sum(d))
    maxes.append(max(d))
    prev = m
cpu1 = sum(cpu(p) for p in pids)
evaluated = (iterations(m) - it0) / max(1, groups(m))
peak = sum(hwm(p) for p in pids)

med = lambda v: sorted(v)[len(v) // 2]
print(f"{kind}: {groups(m)} groups, {windows} windows of {INTERVAL} s, {evaluated:.1f} rounds evaluated: "
      f"group durations summed median {med(sums) * 1e3:.1f} ms per round (min {min(sums) * 1e3:.1f}, max {max(sums) * 1e3:.1f}), "
      f"longest group median {med(maxes) * 1e3:.1f} ms; CPU {(cpu1 - cpu0) / max(evaluated, 1e-9):.3f} s per round "
      f"(pids {','.join(pids)}); VmHWM {peak} kB", flush=True)

# rendering 1.6 million alerts (SCALE 4) takes Prometheus over ten minutes
alerts = json.load(urllib.request.urlopen(base + "/api/v1/alerts", timeout=float(os.environ.get("ANSWER_TIMEOUT", "3600"))))["data"]["alerts"]
with open(answer_out, "w") as f:
    for a in alerts:
        f.write(json.dumps({"rule": a["labels"].get("alertname", a.get("name")), "labels": a["labels"],
                            "state": a["state"]}) + "\n")
print(f"{kind}: {len(alerts)} alerts in its /api/v1/alerts")
