#!/usr/bin/env python3
"""Static checks of deploy/observability/ that promtool does not make. Run by scripts/check-deploy from the
repository root (needs PyYAML):

  check.py rules [--structural] NAME:PORT...
      alerts.yml: every rule has alert, expr, for, labels.severity (page or ticket), annotations.summary,
      description and runbook_url; alert names are unique; each runbook_url is docs/runbook.md#<anchor> and the
      runbook has that section; every almoner_* and http_* metric a rule or a dashboard panel uses is registered
      in the code (crates/, services/), or is the backup metric whose contract docs/runbook.md states; every
      job a rule selects is scraped by prometheus.yml; prometheus.yml loads alerts.yml and scrapes each service
      (NAME:PORT, from scripts/lib/config.sh) at 127.0.0.1:PORT, with its readiness probe. --structural: also
      parse every expr loosely (balanced brackets and quotes), for when promtool is unavailable.
  check.py dashboard
      grafana-dashboard.json: parses, schemaVersion 39, a `datasource` variable of type datasource (prometheus),
      every panel and target on ${datasource}, unique panel ids, every target has an expr.
  check.py dashboard-rules FILE
      writes every dashboard query, Grafana variables replaced, as recording rules into FILE, so that
      `promtool check rules FILE` parses the dashboard's PromQL too.
Prints one line per problem and exits 1 when there is any.
"""

import json
import re
import sys
from pathlib import Path

import yaml

HERE = Path("deploy/observability")
RULES = HERE / "alerts.yml"
CONFIG = HERE / "prometheus.yml"
DASHBOARD = HERE / "grafana-dashboard.json"
RUNBOOK = Path("docs/runbook.md")
# Written by the backup (not yet in the code): its contract is docs/runbook.md#the-backup-metric.
CONTRACT_METRICS = {"almoner_backup_last_success_timestamp_seconds"}
OWN_METRIC = re.compile(r"\b((?:almoner|http)_[a-z0-9_]+)\b")
HISTOGRAM_SUFFIX = re.compile(r"_(bucket|sum|count)$")
JOB_SELECTOR = re.compile(r'\bjob\s*(=~|=)\s*"([^"]*)"')

problems = []


def problem(message):
    problems.append(message)
    print(f"      {message}")


def slug(heading):
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def runbook_anchors():
    if not RUNBOOK.exists():
        problem(f"{RUNBOOK} is missing")
        return set()
    anchors = set()
    in_code = False
    for line in RUNBOOK.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (m := re.match(r"#{1,6}\s+(.*)", line)):
            anchors.add(slug(m.group(1)))
    return anchors


def registered_metrics():
    """Every quoted almoner_*/http_* name in the Rust sources of crates/ and services/ that use prometheus
    (tests and the benchmark client, which only reads metrics, excluded)."""
    names = set()
    for root in ("crates", "services"):
        for path in Path(root).rglob("*.rs"):
            if "tests" in path.parts or "bench" in path.parts:
                continue
            text = path.read_text(errors="replace")
            if "prometheus" not in text:
                continue
            names.update(re.findall(r'"((?:almoner|http)_[a-z0-9_]+)"', text))
    return names


def check_metrics(where, expr, known):
    for name in sorted(set(OWN_METRIC.findall(expr))):
        base = HISTOGRAM_SUFFIX.sub("", name)
        if name in known or base in known:
            continue
        if name in CONTRACT_METRICS:
            if not RUNBOOK.exists() or name not in RUNBOOK.read_text():
                problem(f"{where}: {name} is a contract metric, but {RUNBOOK} does not describe it")
            continue
        problem(f"{where}: metric {name} is not registered anywhere in crates/ or services/")


def loosely_parses(expr):
    """Balanced (), [], {} outside strings, and closed strings: what a typo usually breaks."""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack, quote, escaped = [], None, False
    for ch in expr:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'`":
            quote = ch
        elif ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                return False
    return not stack and quote is None


def scrape_jobs(config):
    return {job.get("job_name"): job for job in config.get("scrape_configs") or []}


def check_rules(structural, services):
    try:
        doc = yaml.safe_load(RULES.read_text())
        config = yaml.safe_load(CONFIG.read_text())
    except (OSError, yaml.YAMLError) as e:
        problem(f"cannot read the rules or the scrape config: {e}")
        return 0
    anchors = runbook_anchors()
    known = registered_metrics()
    jobs = scrape_jobs(config)
    seen = set()
    count = 0
    for group in doc.get("groups") or []:
        for rule in group.get("rules") or []:
            count += 1
            name = rule.get("alert")
            where = f"{RULES}: {name or rule.get('record') or '?'}"
            if not name:
                problem(f"{where}: not an alerting rule (no `alert`)")
                continue
            if name in seen:
                problem(f"{where}: the alert name is used twice")
            seen.add(name)
            expr = rule.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                problem(f"{where}: no expr")
                expr = ""
            if not rule.get("for"):
                problem(f"{where}: no `for`")
            if (rule.get("labels") or {}).get("severity") not in ("page", "ticket"):
                problem(f"{where}: labels.severity must be page or ticket")
            annotations = rule.get("annotations") or {}
            for key in ("summary", "description", "runbook_url"):
                if not annotations.get(key):
                    problem(f"{where}: no annotations.{key}")
            url = annotations.get("runbook_url") or ""
            m = re.fullmatch(r"docs/runbook\.md#([\w-]+)", url)
            if not m:
                problem(f"{where}: runbook_url {url!r} is not docs/runbook.md#<section>")
            elif m.group(1) not in anchors:
                problem(f"{where}: {RUNBOOK} has no section #{m.group(1)}")
            elif m.group(1) != name.lower():
                problem(f"{where}: runbook_url should point at the section named after the alert (#{name.lower()})")
            if structural and expr and not loosely_parses(expr):
                problem(f"{where}: expr has unbalanced brackets or quotes")
            check_metrics(where, expr, known)
            for op, value in JOB_SELECTOR.findall(expr):
                wanted = value.split("|") if op == "=~" else [value]
                for job in wanted:
                    if job not in jobs:
                        problem(f"{where}: selects job {job!r}, which {CONFIG} does not scrape")
    # The scrape config: loads the rules, and scrapes each service where scripts/up runs it.
    if "alerts.yml" not in (config.get("rule_files") or []):
        problem(f"{CONFIG}: rule_files does not list alerts.yml")
    for job_name, target_of in (("almoner", lambda port: f"127.0.0.1:{port}"),
                                ("almoner-ready", lambda port: f"http://127.0.0.1:{port}/ready")):
        job = jobs.get(job_name)
        if not job:
            problem(f"{CONFIG}: no scrape job {job_name}")
            continue
        have = {}
        for static in job.get("static_configs") or []:
            for target in static.get("targets") or []:
                have[(static.get("labels") or {}).get("service")] = target
        for entry in services:
            service, port = entry.split(":")
            if have.get(service) != target_of(port):
                problem(f"{CONFIG}: job {job_name} should scrape {service} at {target_of(port)} (has {have.get(service)})")
        extra = set(have) - {entry.split(":")[0] for entry in services}
        if extra:
            problem(f"{CONFIG}: job {job_name} scrapes unknown services {sorted(extra)}")
    return count


def dashboard_targets(dashboard):
    for panel in dashboard.get("panels") or []:
        for inner in [panel] + list(panel.get("panels") or []):
            for target in inner.get("targets") or []:
                yield inner, target


def check_dashboard():
    try:
        dashboard = json.loads(DASHBOARD.read_text())
    except (OSError, json.JSONDecodeError) as e:
        problem(f"{DASHBOARD}: {e}")
        return 0, 0
    if dashboard.get("schemaVersion") != 39:
        problem(f"{DASHBOARD}: schemaVersion is {dashboard.get('schemaVersion')}, not 39")
    variables = {v.get("name"): v for v in (dashboard.get("templating") or {}).get("list") or []}
    ds = variables.get("datasource") or {}
    if ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problem(f"{DASHBOARD}: no `datasource` variable of type datasource querying prometheus")
    ids = [p.get("id") for p in dashboard.get("panels") or []]
    if len(ids) != len(set(ids)):
        problem(f"{DASHBOARD}: panel ids are not unique")
    known = registered_metrics()
    panels = 0
    targets = 0
    for panel in dashboard.get("panels") or []:
        if panel.get("type") in ("row", "text"):
            continue
        panels += 1
        where = f"{DASHBOARD}: panel {panel.get('title')!r}"
        if (panel.get("datasource") or {}).get("uid") != "${datasource}":
            problem(f"{where}: datasource is not ${{datasource}}")
        if not panel.get("targets"):
            problem(f"{where}: no targets")
    for panel, target in dashboard_targets(dashboard):
        targets += 1
        where = f"{DASHBOARD}: panel {panel.get('title')!r} target {target.get('refId')}"
        if (target.get("datasource") or {}).get("uid") != "${datasource}":
            problem(f"{where}: datasource is not ${{datasource}}")
        if not target.get("expr"):
            problem(f"{where}: no expr")
            continue
        check_metrics(where, target["expr"], known)
    return panels, targets


def dashboard_rules(out):
    dashboard = json.loads(DASHBOARD.read_text())
    rules = []
    for i, (_, target) in enumerate(dashboard_targets(dashboard)):
        expr = (target["expr"].replace("$__rate_interval", "5m").replace("$__interval", "1m")
                .replace("$__range", "1h").replace("$service", ".*"))
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    Path(out).write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, sort_keys=False))
    return len(rules)


def main(argv):
    if not argv:
        print(__doc__)
        return 2
    command, args = argv[0], argv[1:]
    if command == "rules":
        structural = "--structural" in args
        services = [a for a in args if a != "--structural"]
        count = check_rules(structural, services)
        if not problems:
            print(f"{count} alerts")
    elif command == "dashboard":
        panels, targets = check_dashboard()
        if not problems:
            print(f"{panels} panels, {targets} queries")
    elif command == "dashboard-rules" and len(args) == 1:
        print(f"{dashboard_rules(args[0])} queries")
    else:
        print(__doc__)
        return 2
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
