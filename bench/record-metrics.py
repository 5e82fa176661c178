#!/usr/bin/env python3
"""Records a /metrics page every INTERVAL seconds into a gzipped file in the shape of
tests/fixtures/recording.prom.gz: `# scrape <unix ms>` then the text-format body, repeated.

usage: record-metrics.py URL OUT.prom.gz [--interval 15] [--seconds 7200]
"""
import argparse
import gzip
import time
import urllib.request

p = argparse.ArgumentParser()
p.add_argument("url")
p.add_argument("out")
p.add_argument("--interval", type=float, default=15)
p.add_argument("--seconds", type=float, default=7200)
a = p.parse_args()
end = time.time() + a.seconds
n = 0
with gzip.open(a.out, "wt") as f:
    while time.time() < end:
        began = time.time()
        body = urllib.request.urlopen(a.url, timeout=10).read().decode()
        f.write(f"# scrape {int(began * 1000)}\n{body}")
        f.flush()
        n += 1
        time.sleep(max(0.0, a.interval - (time.time() - began)))
print(f"{n} scrapes of {a.url} in {a.out}")
