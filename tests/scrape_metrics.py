#!/usr/bin/env python3
"""Scrapes a hyflow /metrics endpoint the way Prometheus would: an HTTP GET (urllib), the body
parsed by prometheus_client's OpenMetrics parser (which refuses malformed text). Prints one JSON
object: {"metrics": {sample name: {label string: value}}, "health": (status, body)}."""
import json
import sys
import urllib.error
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families

base = sys.argv[1].rstrip("/")
with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
    kind = r.headers.get("Content-Type", "")
    assert kind.startswith("application/openmetrics-text"), kind
    text = r.read().decode("utf-8")
out = {}
for family in text_string_to_metric_families(text):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        out.setdefault(s.name, {})[labels] = s.value
try:
    with urllib.request.urlopen(base + "/health", timeout=10) as r:
        health = [r.status, r.read().decode()]
except urllib.error.HTTPError as e:
    health = [e.code, e.read().decode()]
print(json.dumps({"metrics": out, "health": health}))
