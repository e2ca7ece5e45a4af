#!/usr/bin/env python3
"""Reads hyflow outputs with pyarrow and checks them against the documented schemas
(README.md, docs/outputs.md).
Usage: read_outputs.py OUT_DIR FEATURE[,FEATURE...] NONEMPTY_OUTPUT[,...] DETECTOR[,DETECTOR...]"""
import sys

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.ipc as ipc

out, features, nonempty = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(",")
detectors = [d for d in sys.argv[4].split(",") if d]
# Every time column: milliseconds, in UTC.
TIME = pa.timestamp("ms", tz="UTC")

expected = {
    "windows": [("sensor_id", pa.string()), ("window_start", TIME), ("window_end", TIME)]
    + [(f, pa.int64() if f == "count" else pa.float64()) for f in features]
    + [("filled", pa.int64()), ("score", pa.float64()), ("ai_score", pa.float64()),
       ("rule_score", pa.float64()), ("fused", pa.float64()), ("alert", pa.bool_()), ("rules", pa.string()),
       ("rebaselined", pa.string())]
    + [("score_" + d, pa.float64()) for d in detectors],
    "alerts": [("schema_version", pa.int64()), ("pipeline", pa.string()), ("event_id", pa.string()),
               ("sensor_id", pa.string()),
               ("episode", pa.int64()), ("state", pa.string()), ("window_start", TIME),
               ("window_end", TIME), ("opened_at", TIME), ("fused", pa.float64()),
               ("peak", pa.float64()), ("score", pa.float64()), ("ai_score", pa.float64()),
               ("rule_score", pa.float64()),
               ("rules", pa.string()), ("severity", pa.string()), ("top_features", pa.string())],
    "rejects": [("source", pa.string()), ("row", pa.int64()), ("sensor_id", pa.string()),
                ("time", TIME), ("value", pa.float64()), ("reason", pa.string())],
    "late": [("source", pa.string()), ("row", pa.int64()), ("sensor_id", pa.string()), ("time", TIME),
             ("value", pa.float64()), ("watermark", TIME), ("reason", pa.string())],
}

failures = []
for name, cols in expected.items():
    table = ds.dataset(f"{out}/{name}", format="parquet", partitioning="hive").to_table()
    got = [(f.name, f.type) for f in table.schema if f.name not in ("date", "hour")]
    if got != cols:
        failures.append(f"{name}: schema {got} != {cols}")
    # The file says which schema it holds (docs/outputs.md): 2, typed times.
    for frag in ds.dataset(f"{out}/{name}", format="parquet", partitioning="hive").get_fragments():
        meta = frag.metadata.metadata or {}
        if meta.get(b"hyflow.schema_version") != b"2":
            failures.append(f"{name}: {frag.path} has schema version {meta.get(b'hyflow.schema_version')}")
        break
    if table.num_rows == 0 and name in nonempty:
        failures.append(f"{name}: no rows")
    print(f"{name}: {table.num_rows} rows")

windows = ds.dataset(f"{out}/windows", format="parquet", partitioning="hive").to_table()
states = set(ds.dataset(f"{out}/alerts", format="parquet").to_table()["state"].to_pylist())
if not states <= {"open", "update", "resolved"} or "open" not in states:
    failures.append(f"alerts: unexpected states {states}")
if min(windows["count"].to_pylist()) < 1:
    failures.append("windows: a window with no reading")

arrow_file = f"{out}/alerts-arrow.arrow"
try:
    with open(arrow_file, "rb") as f:
        t = ipc.open_file(f).read_all()
    print(f"alerts-arrow: {t.num_rows} rows")
    if t.schema.field("window_end").type != TIME:
        failures.append(f"alerts-arrow: window_end is {t.schema.field('window_end').type}")
except FileNotFoundError:
    pass

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("ok")
