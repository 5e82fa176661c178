#!/usr/bin/env python3
"""Compares the answers of rule engines: the sets of (rule, labels, state) after the same rounds.

Each ANSWER file holds one {"rule", "labels", "state"} JSON object a line (written by
benches/rules_four_ways.rs and bench/rule-engine-watch.py). Labels an engine adds on its own
(vmalert's `alertgroup`) are left out. Prints, for each file against the first, how many
entries both hold and which differ, grouped by rule and state, with up to EXAMPLES examples.
Exit status 1 when any set differs.

usage: compare-answers.py NAME=ANSWER NAME=ANSWER... [--rules RULES.yml] [--examples 5]
"""
import argparse
import collections
import json
import re

p = argparse.ArgumentParser()
p.add_argument("answers", nargs="+")
p.add_argument("--rules", help="the rule file, to name each differing rule's expression")
p.add_argument("--examples", type=int, default=5)
a = p.parse_args()
ENGINE_LABELS = {"alertgroup"}

exprs = {}
if a.rules:
    name = None
    for line in open(a.rules):
        m = re.match(r"\s*- alert: (\S+)", line)
        if m:
            name = m.group(1)
        m = re.match(r"\s*expr: (.*)", line)
        if m and name:
            exprs[name] = m.group(1)


def load(path):
    out = set()
    for line in open(path):
        if line.strip():
            o = json.loads(line)
            labels = tuple(sorted((k, v) for k, v in o["labels"].items() if k not in ENGINE_LABELS))
            out.add((o["rule"], labels, o["state"]))
    return out


sets = []
for arg in a.answers:
    n, path = arg.split("=", 1)
    sets.append((n, load(path)))
base_name, base = sets[0]
differs = False
for n, s in sets:
    states = collections.Counter(st for _, _, st in s)
    print(f"{n}: {len(s)} alerts ({', '.join(f'{v} {k}' for k, v in sorted(states.items()))})")
for n, s in sets[1:]:
    only_base, only_this = base - s, s - base
    print(f"{n} against {base_name}: {len(base & s)} the same, {len(only_base)} only in {base_name}, {len(only_this)} only in {n}")
    a_keys, b_keys = {(r, l) for r, l, _ in base}, {(r, l) for r, l, _ in s}
    print(f"  (rule, labels) alone, state aside: {len(a_keys & b_keys)} the same, {len(a_keys - b_keys)} only in {base_name}, {len(b_keys - a_keys)} only in {n}")
    for label, diff in ((f"only in {base_name}", only_base), (f"only in {n}", only_this)):
        by_rule = collections.defaultdict(list)
        for rule, labels, st in diff:
            by_rule[(rule, st)].append(labels)
        for (rule, st), ls in sorted(by_rule.items())[: a.examples]:
            print(f"  {label}: {rule} ({exprs.get(rule, '?')}) {st}: {len(ls)}, e.g. {dict(ls[0])}")
        if len(by_rule) > a.examples:
            print(f"  {label}: ... {len(by_rule) - a.examples} more rules")
    differs |= bool(only_base or only_this)
raise SystemExit(1 if differs else 0)
