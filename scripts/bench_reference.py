#!/usr/bin/env python3
"""Check hyflow's output for the benchmark workload against the reference semantics.

Computes WORKLOAD.md (../shared/bench/WORKLOAD.md) directly with numpy + pyarrow from the
input Parquet, reads hyflow's windows output (a Parquet directory or file), and compares:
same (sensor, window) keys and counts; mean/std/min/max within 1e-6 relative; score within
1e-6 relative where below 1e6; equal alerts. Exit 0 when equal, 1 with a report otherwise.

Usage: bench_reference.py INPUT.parquet HYFLOW_WINDOWS_DIR
"""
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq


def reference(path):
    t = pq.read_table(path, columns=["sensor_id", "ts", "value"])
    v = t["value"].to_numpy(zero_copy_only=False)
    keep = ~np.isnan(v) & (v >= -1e6) & (v <= 1e6)
    t = t.filter(keep)
    ws = (t["ts"].to_numpy() // 10000) * 10000
    t = t.append_column("window_start", [ws])
    g = t.group_by(["sensor_id", "window_start"]).aggregate(
        [("value", "count"), ("value", "mean"), ("value", "stddev", pc.VarianceOptions(ddof=0)),
         ("value", "min"), ("value", "max")])
    g = g.sort_by([("sensor_id", "ascending"), ("window_start", "ascending")])
    sensors = g["sensor_id"].to_pylist()
    means = g["value_mean"].to_numpy()
    score = np.zeros(len(means))
    alert = np.zeros(len(means), dtype=bool)
    prev = None
    for i, s in enumerate(sensors):
        if s != prev:
            n, m, var = 0, 0.0, 0.0
            prev = s
        x = means[i]
        score[i] = 0.0 if n == 0 else abs(x - m) / np.sqrt(var + 1e-9)
        alert[i] = n >= 5 and score[i] > 4.0
        if n == 0:
            m, var = x, 0.0
        else:
            d = x - m
            m = m + 0.1 * d
            var = 0.9 * (var + 0.1 * d * d)
        n += 1
    return {
        "key": list(zip(sensors, g["window_start"].to_pylist())),
        "count": g["value_count"].to_numpy(), "mean": means, "std": g["value_stddev"].to_numpy(),
        "min": g["value_min"].to_numpy(), "max": g["value_max"].to_numpy(),
        "score": score, "alert": alert,
    }


def hyflow(path):
    t = ds.dataset(path, format="parquet").to_table()
    t = t.sort_by([("sensor_id", "ascending"), ("window_start", "ascending")])
    out = {c: t[c].to_numpy() for c in ["count", "mean", "std", "min", "max", "score", "alert"]}
    # window_start is a timestamp (ms, UTC): compared as ms since the epoch, as the reference's.
    starts = t["window_start"].cast(pa.int64()).to_pylist()
    out["key"] = list(zip(t["sensor_id"].to_pylist(), starts))
    return out


def close(a, b, rel=1e-6):
    return np.abs(a - b) <= rel * np.maximum(np.abs(b), 1e-12) + 1e-12


def main():
    ref, got = reference(sys.argv[1]), hyflow(sys.argv[2])
    errors = []
    if ref["key"] != got["key"]:
        errors.append(f"keys differ: reference {len(ref['key'])} windows, hyflow {len(got['key'])}")
    else:
        if not np.array_equal(ref["count"], got["count"]):
            errors.append("counts differ")
        for c in ["mean", "std", "min", "max"]:
            bad = ~close(got[c], ref[c])
            if bad.any():
                errors.append(f"{c}: {bad.sum()} windows differ")
        small = ref["score"] < 1e6
        bad = ~close(got["score"][small], ref["score"][small])
        if bad.any():
            errors.append(f"score: {bad.sum()} windows differ")
        if not np.array_equal(ref["alert"], got["alert"]):
            errors.append(f"alert: {(ref['alert'] != got['alert']).sum()} windows differ")
    if errors:
        print("MISMATCH: " + "; ".join(errors))
        return 1
    print(f"equal: {len(ref['key'])} windows, {int(ref['alert'].sum())} alerts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
