#!/usr/bin/env python3
"""Renders the key tables of docs/pipeline.md from `hyflow schema` (the doc comments of
src/config/schema.rs). Usage: hyflow schema | python3 scripts/pipeline_doc.py > /tmp/tables.md"""
import json
import sys

s = json.load(sys.stdin)
defs = s.get("$defs", {})


def cell(text):
    """Text fit for one markdown table cell: one line, no bare column separators."""
    return text.replace("\n", " ").replace("|", "\\|")


def enum_desc(name):
    d = defs[name]
    if "oneOf" in d:
        return ", ".join("`%s` (%s)" % (x.get("const"), cell(x.get("description", "")).rstrip(".")) for x in d["oneOf"])
    if "enum" in d:
        return ", ".join("`%s`" % e for e in d["enum"])
    return None


def typ(p):
    if "$ref" in p:
        ref = p["$ref"].split("/")[-1]
        return "one of: " + enum_desc(ref) if ref in defs and enum_desc(ref) else ref
    if "anyOf" in p:
        return " or ".join(typ(x) for x in p["anyOf"] if x.get("type") != "null") + " (optional)"
    t = p.get("type")
    if isinstance(t, list):
        t = " or ".join(x for x in t if x != "null") + " (optional)"
    if t == "array":
        return "array of " + typ(p.get("items", {}))
    return t or "?"


def table(title, obj):
    print(f"\n### {title}\n")
    if obj.get("description"):
        print(obj["description"].replace("\n", " ") + "\n")
    print("| key | type | default | meaning |\n|---|---|---|---|")
    req = set(obj.get("required", []))
    for k, p in obj.get("properties", {}).items():
        d = "required" if k in req else ("`%s`" % json.dumps(p["default"]) if "default" in p else "")
        print(f"| `{k}` | {typ(p)} | {d} | {cell(p.get('description', ''))} |")


table("top level", s)
for name, title in [("SourceConfig", "[source]"), ("ColumnMapping", "[source.columns]"), ("CleanConfig", "[clean]"),
                    ("SensorClass", "[[clean.class]]"), ("FillConfig", "[clean.fill]"), ("WindowConfig", "[window]"),
                    ("FeaturesConfig", "[features]"), ("BandConfig", "[[features.band]]"), ("DetectConfig", "[detect]"),
                    ("DetectorConfig", "[[detect.detector]]"), ("RuleConfig", "[[rules]]"), ("FuseConfig", "[fuse]"), ("RegistryConfig", "[registry]"),
                    ("RegistryClass", "[[registry.class]]"),
                    ("SinkConfig", "[[sink]]"), ("ComputeConfig", "[compute]"), ("RecoveryConfig", "[recovery]"), ("TestConfig", "[[test]]"),
                    ("SeriesConfig", "[[test.series]]"), ("ExpectWindow", "[[test.expect-window]]"),
                    ("ExpectAlert", "[[test.expect-alert]]"), ("CsvOptions", "[source.csv]"),
                    ("KafkaSource", "[source.kafka]"), ("KafkaSink", "[[sink]] kafka = { ... }")]:
    table(title, defs[name])
