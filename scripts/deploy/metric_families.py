#!/usr/bin/env python3
"""The metric families that the alerts and the dashboard name, checked against /metrics.

Subcommands:
  list                     print every metric name the PromQL of the PrometheusRule and the
                           Grafana dashboard names (one per line, sorted)
  check METRICS_TEXT       fail, naming each, when a name is not a family of the scraped
                           exposition text (a histogram's `_bucket`/`_sum`/`_count` and a
                           summary's `_sum`/`_count` count as their family)
  dashboard-rules OUT      write the dashboard's queries as a Prometheus rules file (Grafana
                           variables replaced), so that `promtool check rules OUT` parses them
  self-test                the extractor and the check on known input

Used by scripts/api-check.sh (check, after a workload) and scripts/validate-deploy.sh
(dashboard-rules, self-test). Only PyYAML is needed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Iterator

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/components/monitoring/prometheusrule.yaml"
DASHBOARD = ROOT / "deploy/components/monitoring/grafana-dashboard.json"

# PromQL words that look like identifiers and are not metric names.
KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan", "atan2", "start", "end",
}
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def names(expr: str) -> set[str]:
    """The metric names an expression selects (label names, functions and keywords aside)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # strings
    text = re.sub(r"#[^\n]*", "", text)  # comments
    text = re.sub(r"\{[^}]*\}", "{}", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "[]", text)  # ranges and subqueries
    text = GROUPING.sub(" ", text)  # by (...), on (...), group_left (...)
    text = re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?", " ", text)  # Grafana variables
    found = set()
    for match in IDENT.finditer(text):
        word = match.group(0)
        before = text[: match.start()]
        after = text[match.end():].lstrip()
        if before and (before[-1].isdigit() or before[-1] == "."):
            continue  # the unit of a duration (5m) or a number (1e3)
        if after.startswith("(") or word.lower() in KEYWORDS:
            continue
        found.add(word)
    return found


def rule_exprs() -> Iterator[tuple[str, str]]:
    for doc in yaml.safe_load_all(RULES.read_text(encoding="utf-8")):
        for group in (doc or {}).get("spec", {}).get("groups", []):
            for rule in group["rules"]:
                yield f"rule {rule.get('alert') or rule.get('record')}", rule["expr"]


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text(encoding="utf-8"))

    def panels(items):
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dash.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield f"panel {panel['title']!r}", target["expr"]
    for var in dash.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            inner = re.fullmatch(r"\s*label_values\((.*),\s*[A-Za-z_]+\s*\)\s*", query)
            yield f"variable {var['name']}", inner.group(1) if inner else query


def all_names() -> dict[str, list[str]]:
    where: dict[str, list[str]] = {}
    for origin, expr in [*rule_exprs(), *dashboard_exprs()]:
        for name in names(expr):
            where.setdefault(name, []).append(origin)
    return where


def exposed_families(text: str) -> dict[str, str]:
    """family -> type, from the `# TYPE` lines of the exposition format."""
    families = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[:2] == ["#", "TYPE"]:
            families[parts[2]] = parts[3]
    return families


def missing(where: dict[str, list[str]], families: dict[str, str]) -> list[str]:
    problems = []
    for name in sorted(where):
        if name in families:
            continue
        base, _, suffix = name.rpartition("_")
        kind = families.get(base)
        if (suffix == "bucket" and kind == "histogram") or (suffix in ("sum", "count") and kind in ("histogram", "summary")):
            continue
        problems.append(f"{name} (named by {', '.join(sorted(set(where[name])))}) is not a family of /metrics")
    return problems


def cmd_list(_args) -> int:
    print("\n".join(sorted(all_names())))
    return 0


def cmd_check(args) -> int:
    where = all_names()
    families = exposed_families(Path(args.metrics).read_text(encoding="utf-8"))
    if not families:
        print(f"FAIL {args.metrics} holds no `# TYPE` line", file=sys.stderr)
        return 1
    problems = missing(where, families)
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"ok   the {len(where)} metric names of the alerts and the dashboard are families of /metrics ({len(families)} exposed)")
    return 0


def cmd_dashboard_rules(args) -> int:
    rules = []
    for i, (origin, expr) in enumerate(dashboard_exprs()):
        for var, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(var, value)
        expr = re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?", "x", expr)
        rules.append({"record": f"dashboard:query_{i}", "expr": expr, "labels": {"origin": origin}})
    Path(args.out).write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
    print(f"ok   {len(rules)} dashboard queries written to {args.out}")
    return 0


def cmd_self_test(_args) -> int:
    cases = {
        'sum by (namespace, le) (rate(a_seconds_bucket{job="x",route="/b_c"}[5m])) > 300': {"a_seconds_bucket"},
        'histogram_quantile(0.95, sum by (le) (rate(h_bucket[$__rate_interval])))': {"h_bucket"},
        '(c_total unless c_total offset 1h) or increase(c_total[1h])': {"c_total"},
        'a / on (pod) group_left (version) b_info * 60 > 5e3': {"a", "b_info"},
        'sum(rate(x{reason=~"missing_header|mismatch"}[5m])) * 60 > bool 1': {"x"},
    }
    failures = [f"{expr!r}: {names(expr)} != {want}" for expr, want in cases.items() if names(expr) != want]
    families = {"h": "histogram", "c_total": "counter", "g": "gauge"}
    got = missing({"h_bucket": ["t"], "h_count": ["t"], "c_total": ["t"], "g_sum": ["t"], "nope": ["t"]}, families)
    if [p.split()[0] for p in got] != ["g_sum", "nope"]:
        failures.append(f"missing() -> {got}")
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    if failures:
        return 1
    print("ok   metric_families.py self-test (extraction, histogram suffixes, a missing family is named)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list")
    check = sub.add_parser("check")
    check.add_argument("metrics")
    rules = sub.add_parser("dashboard-rules")
    rules.add_argument("out")
    sub.add_parser("self-test")
    args = parser.parse_args()
    return {"list": cmd_list, "check": cmd_check, "dashboard-rules": cmd_dashboard_rules, "self-test": cmd_self_test}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
