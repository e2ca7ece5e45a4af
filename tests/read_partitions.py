"""Runs the partitioned-output reading example of docs/outputs.md (pyarrow, polars, DuckDB) on
an output directory written with `partition = "hour"`, and checks that the three readers agree:
the same columns, `date` a date and `hour` an 8-bit integer in each, and the same rows.
Usage: read_partitions.py DIR (tests/it/pyarrow_outputs.rs runs it)."""
import datetime
import re
import sys

out = sys.argv[1]
doc = open("docs/outputs.md").read()
block = doc.split("### Partitioned outputs", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
assert 'd = "out/traffic/windows"' in block, block
env = {}
exec(block.replace('d = "out/traffic/windows"', "d = %r" % out), env)
t, p, q = env["t"], env["p"], env["q"]

import pyarrow as pa  # noqa: E402

assert t.schema.field("date").type == pa.date32(), t.schema
assert t.schema.field("hour").type == pa.int8(), t.schema
assert str(p.schema["date"]) == "Date" and str(p.schema["hour"]) == "Int8", p.schema
types = dict(zip(q.columns, [str(x) for x in q.types]))
assert types["date"] == "DATE" and types["hour"] == "TINYINT", types
cols = sorted(t.column_names)
assert sorted(p.columns) == cols and sorted(q.columns) == cols, (cols, p.columns, q.columns)


def rows(records):
    return sorted(tuple(str(r[c]) for c in cols) for r in records)


a = rows(t.to_pylist())
b = rows(p.to_dicts())
c = rows([dict(zip(q.columns, r)) for r in q.fetchall()])
assert len(a) > 0
assert a == b, "pyarrow and polars read different rows"
assert a == c, "pyarrow and DuckDB read different rows"
# Each row sits in the partition of its window's start (UTC).
for r in t.select(["date", "hour", "window_start"]).to_pylist()[:1000]:
    ws = r["window_start"]
    start = ws if isinstance(ws, datetime.datetime) else datetime.datetime.fromtimestamp(ws / 1000, datetime.timezone.utc)
    assert (start.date(), start.hour) == (r["date"], r["hour"]), r
print("partitions: pyarrow, polars and DuckDB agree on %d rows, columns %s" % (len(a), ",".join(cols)))
