#!/usr/bin/env python3
"""A recording (`# scrape <unix ms>` then a text-format body, repeated, gzipped) as the samples
other stores import, with their timestamps:
  OUT.om    OpenMetrics, timestamps in seconds with milliseconds, for
            `promtool tsdb create-blocks-from openmetrics` (no TYPE lines: every family unknown,
            so histogram and summary parts stay plain series, as the sentinel stores them)
  OUT.prom  text with millisecond timestamps, for VictoriaMetrics's /api/v1/import/prometheus
Samples are read as benches/history.rs reads them (a line `series value`, the value a float).
Prints the number of samples and series.

usage: recording-to.py RECORDING.prom.gz OUT
"""
import gzip
import sys
import zlib

src, out = sys.argv[1], sys.argv[2]
raw = open(src, "rb").read()
# a recording cut short has no gzip trailer: read what is there
text = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw).decode()
series = {}
at = None
for line in text.splitlines():
    if line.startswith("# scrape "):
        at = int(line[9:])
        continue
    if line.startswith("#") or not line.strip() or at is None:
        continue
    s, _, v = line.rpartition(" ")
    try:
        float(v)
    except ValueError:
        continue
    # the last value of a series in one scrape stands, as in the history (first one, there)
    series.setdefault(s, {}).setdefault(at, v)
n = 0
with open(out + ".om", "w") as om, open(out + ".prom", "w") as pr:
    for s, points in series.items():
        for t, v in sorted(points.items()):
            om.write(f"{s} {v} {t // 1000}.{t % 1000:03d}\n")
            pr.write(f"{s} {v} {t}\n")
            n += 1
    om.write("# EOF\n")
print(f"{n} samples of {len(series)} series")
