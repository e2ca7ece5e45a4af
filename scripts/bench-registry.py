#!/usr/bin/env python3
"""Writes the registry of the registry benchmark (docs/performance.md, issue #15) into
target/bench/: 100 000 sensors (the benchmark workload's 1 000, m0000-temp ..., and 99 000
others) with a numeric attribute `limit`, and a change log of 1 000 changes per second of event
time over the workload's 1 000 s (1 M changes, each a new limit for a random sensor, a tenth of
them for the workload's own sensors). Deterministic."""
import json
import os
import random

T0 = 1_700_000_000_000
KINDS = ["temp", "pres", "hum", "vib"]
rng = random.Random(42)
os.makedirs("target/bench", exist_ok=True)
names = ["m%04d-%s" % (i // 4, KINDS[i % 4]) for i in range(1000)]
names += ["x%05d-%s" % (i // 4, KINDS[i % 4]) for i in range(99_000)]
with open("target/bench/registry_100k.csv", "w") as f:
    f.write("sensor,asset,limit\n")
    for n in names:
        f.write("%s,%s,%.1f\n" % (n, n.split("-")[0], rng.uniform(100, 200)))
with open("target/bench/registry_changes.jsonl", "w") as f:
    for k in range(1_000_000):
        t = T0 + k  # 1 000 per second
        n = names[rng.randrange(1000)] if k % 10 == 0 else names[rng.randrange(len(names))]
        v = {"asset": n.split("-")[0], "limit": round(rng.uniform(100, 200), 1)}
        f.write(json.dumps({"time": t, "sensor": n, "value": v}) + "\n")
print("wrote target/bench/registry_100k.csv and target/bench/registry_changes.jsonl")
