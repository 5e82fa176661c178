#!/usr/bin/env python3
"""The rule workload's series as timed samples, one set of samples for every engine.

Reads METRICS (rule-workload.py's page) and writes, in OUT:
  samples.om    OpenMetrics with timestamps in seconds, for `promtool tsdb create-blocks-from openmetrics`
  samples.prom  the same samples as text with millisecond timestamps, tick by tick, for
                VictoriaMetrics's /api/v1/import/prometheus and for benches/rules_four_ways.rs
  times.env     T0_MS (the first sample), FIRST_EVAL_MS (the first evaluation: PAST ticks after T0)
Ticks are 15 s apart, from T0 (PAST ticks before now, aligned to 15 s) to FUTURE ticks after
now, so that Prometheus and vmalert, which evaluate at the wall clock, find the same samples
around them as the sentinel's fixed evaluation times do. Gauges keep their page value at every
tick; counters grow by it each tick (value * (tick + 1)), so every rate is the page value / 15.

usage: rule-samples.py METRICS OUT [--past 40] [--future 80]
"""
import argparse
import os
import time

p = argparse.ArgumentParser()
p.add_argument("metrics")
p.add_argument("out")
p.add_argument("--past", type=int, default=40)
p.add_argument("--future", type=int, default=80)
a = p.parse_args()

STEP = 15
now = int(time.time()) // STEP * STEP
t0 = now - a.past * STEP
ticks = a.past + a.future
series = []
for line in open(a.metrics):
    if line.startswith("#") or not line.strip():
        continue
    s, v = line.rsplit(" ", 1)
    series.append((s, float(v), s.split("{", 1)[0].endswith("_total")))

os.makedirs(a.out, exist_ok=True)
def value(v, counter, i):
    return round(v * (i + 1), 3) if counter else v


# OpenMetrics series by series (each family's samples together); the text file tick by tick,
# so the sentinel's harness appends it as it reads
with open(os.path.join(a.out, "samples.om"), "w") as om:
    for s, v, counter in series:
        om.writelines(f"{s} {value(v, counter, i)!r} {t0 + i * STEP}\n" for i in range(ticks))
    om.write("# EOF\n")
with open(os.path.join(a.out, "samples.prom"), "w") as pr:
    for i in range(ticks):
        ms = (t0 + i * STEP) * 1000
        pr.writelines(f"{s} {value(v, counter, i)!r} {ms}\n" for s, v, counter in series)
with open(os.path.join(a.out, "times.env"), "w") as f:
    f.write(f"T0_MS={t0 * 1000}\nFIRST_EVAL_MS={(t0 + a.past * STEP) * 1000}\nLAST_MS={(t0 + (ticks - 1) * STEP) * 1000}\n")
print(f"{len(series)} series x {ticks} ticks = {len(series) * ticks} samples from {t0} (now {now}) in {a.out}")
