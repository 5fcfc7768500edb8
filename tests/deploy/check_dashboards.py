#!/usr/bin/python3
"""Checks Grafana dashboards: valid JSON, unique panel ids, units and titles on every panel, and every metric a
query names is one facet-server exports (read from server/metrics.cc) or a Prometheus built-in (up).

usage: check_dashboards.py DASHBOARD.json...   (exit 1 with the problems listed)"""
import json
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
PROMQL_WORDS = {"sum", "by", "rate", "increase", "histogram_quantile", "le", "without", "avg", "max", "min",
                "on", "and", "or", "unless", "offset", "bool", "count", "topk", "abs", "changes"}


def exported_metrics():
    source = open(os.path.join(ROOT, "server", "metrics.cc")).read()
    names = set(re.findall(r'Name\("([a-z_:][a-z0-9_:]*)"\)', source))
    names |= set(re.findall(r'Family\("([a-z_:][a-z0-9_:]*)"', source))
    # A histogram also exports its _bucket, _sum and _count series.
    for name in list(names):
        names |= {name + "_bucket", name + "_sum", name + "_count"}
    return names | {"up"}


def metrics_in(expr):
    expr = re.sub(r'\{[^}]*\}', "", expr)           # label matchers
    expr = re.sub(r'\[[^\]]*\]', "", expr)          # range selectors
    expr = re.sub(r'by \([^)]*\)', "", expr)        # grouping labels
    words = re.findall(r'[a-zA-Z_:][a-zA-Z0-9_:]*', expr)
    return {w for w in words if w not in PROMQL_WORDS and not w.startswith("__")}


def check(path, exported):
    problems = []
    try:
        dashboard = json.load(open(path))
    except ValueError as e:
        return [f"{path}: not valid JSON: {e}"]
    ids = [p.get("id") for p in dashboard.get("panels", [])]
    if len(ids) != len(set(ids)) or None in ids:
        problems.append(f"{path}: panel ids are missing or repeated: {ids}")
    if not dashboard.get("uid") or not dashboard.get("title"):
        problems.append(f"{path}: dashboard needs a uid and a title")
    for panel in dashboard.get("panels", []):
        where = f"{path}: panel {panel.get('id')} '{panel.get('title')}'"
        if not panel.get("title"):
            problems.append(f"{where}: no title")
        if not panel.get("fieldConfig", {}).get("defaults", {}).get("unit"):
            problems.append(f"{where}: no unit")
        if not panel.get("targets"):
            problems.append(f"{where}: no query")
        for target in panel.get("targets", []):
            if not target.get("legendFormat"):
                problems.append(f"{where}: query {target.get('refId')} has no legend")
            for metric in metrics_in(target.get("expr", "")):
                if metric not in exported:
                    problems.append(f"{where}: metric '{metric}' is not exported by facet-server")
    return problems


def main(paths):
    if not paths:
        sys.exit(__doc__)
    exported = exported_metrics()
    problems = [p for path in paths for p in check(path, exported)]
    for p in problems:
        print(p)
    print(f"{len(paths)} dashboards, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
