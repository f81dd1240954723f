"""The monitoring files hold together, without Prometheus or Grafana running: the alert rules
have the shape Prometheus loads, every expression (alerts and dashboard) parses as PromQL and
names only metrics that api/metrics.py exports (or Prometheus' own `up`), the jobs the rules
select are the ones prometheus.yml scrapes, and the compose file, the Prometheus config and the
Grafana provisioning agree on paths, ports and the datasource uid.

Every check is a function returning a list of problems; the `..._can_fail` tests feed each one
a broken copy of the real file, so a check that passes everything would be caught."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import promql_parser
import pytest
import yaml

from api.metrics import METRICS

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "task-delay-service.json"
DATASOURCES = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
DASHBOARD_PROVIDERS = ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "dashboards.yml"
COMPOSE = ROOT / "docker-compose.yml"

JOBS = {"tds-api", "tds-worker"}
PROMETHEUS_OWN_METRICS = {"up"}  # written by Prometheus for every target
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
COUNTER_FUNCTIONS = {"rate", "irate", "increase", "resets"}
GAUGE_FUNCTIONS = {"deriv", "delta", "idelta", "predict_linear"}

# Prometheus' model.ParseDuration: units in decreasing order, each at most once.
DURATION = re.compile(r"^(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$")
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
TEMPLATE = re.compile(r"\{\{(.*?)\}\}")
TEMPLATE_BODY = re.compile(
    r"^\s*\$(value|labels\.(?P<label>[a-zA-Z_]\w*))"
    r"(\s*\|\s*(humanize|humanize1024|humanizeDuration|humanizePercentage))?\s*$"
)
GRAFANA_VARIABLE = re.compile(r"\$(\{[^}]*\}|\w+)")

FILE_KEYS = {"groups"}
GROUP_KEYS = {"name", "interval", "limit", "query_offset", "rules"}
RULE_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
SEVERITIES = {"warning", "critical"}


def _yaml(path: Path):
    return yaml.safe_load(path.read_text())


# --- PromQL ----------------------------------------------------------------------------------
def _nodes(expr: promql_parser.Expr) -> list:
    found = []
    promql_parser.walk(expr, lambda node: found.append(node))
    return found


def _selector_name(selector: promql_parser.VectorSelector) -> str | None:
    if selector.name:
        return selector.name
    for matcher in selector.matchers.matchers:
        if matcher.name == "__name__" and matcher.op == promql_parser.MatchOp.Equal:
            return matcher.value
    return None


def metric_name_problem(name: str) -> str | None:
    """Why `name` is not a series our jobs expose (None: it is)."""
    if name in PROMETHEUS_OWN_METRICS:
        return None
    if name in METRICS:
        if METRICS[name][0] == "histogram":
            return f"{name} is a histogram: read its _bucket, _sum or _count series"
        return None
    for suffix in HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and METRICS.get(base, ("",))[0] == "histogram":
            return None
    return f"{name} is not a metric of api.metrics.METRICS"


def _kind(name: str) -> str:
    """counter, gauge or histogram-part (how the series changes), '' when unknown."""
    if name in METRICS:
        return METRICS[name][0]
    if name in PROMETHEUS_OWN_METRICS:
        return "gauge"
    return "counter" if name.endswith(HISTOGRAM_SUFFIXES) else ""


def promql_problems(expr: str) -> list[str]:
    """Syntax, result type, metric names and counter/gauge functions of one expression."""
    try:
        tree = promql_parser.parse(expr)
    except ValueError as exc:
        return [f"does not parse: {exc}"]
    problems = []
    if isinstance(tree, promql_parser.MatrixSelector | promql_parser.SubqueryExpr):
        problems.append("evaluates to a range vector, not an instant vector or scalar")
    for node in _nodes(tree):
        if isinstance(node, promql_parser.VectorSelector):
            name = _selector_name(node)
            if name is None:
                problems.append(f"{node}: a selector without a metric name")
            elif problem := metric_name_problem(name):
                problems.append(problem)
        elif isinstance(node, promql_parser.Call) and node.args:
            argument = node.args[0]
            if not isinstance(argument, promql_parser.MatrixSelector):
                continue
            name = _selector_name(argument.vector_selector) or ""
            if node.func.name in COUNTER_FUNCTIONS and _kind(name) not in ("counter", ""):
                problems.append(f"{node.func.name}() of {name}, a {_kind(name)}")
            if node.func.name in GAUGE_FUNCTIONS and _kind(name) not in ("gauge", ""):
                problems.append(f"{node.func.name}() of {name}, a {_kind(name)}")
    return problems


def job_values(expr: str) -> set[str]:
    """The `job` label values an expression selects (a regex matcher's alternatives)."""
    values = set()
    for node in _nodes(promql_parser.parse(expr)):
        if isinstance(node, promql_parser.VectorSelector):
            for matcher in node.matchers.matchers:
                if matcher.name == "job":
                    values.update(matcher.value.split("|"))
    return values


def _aggregates(expr: str) -> bool:
    return any(
        isinstance(node, promql_parser.AggregateExpr) for node in _nodes(promql_parser.parse(expr))
    )


# --- alerting rules --------------------------------------------------------------------------
def template_problems(text: str, expr: str) -> list[str]:
    """Only $value and the labels the expression can carry, through Prometheus' humanizers."""
    problems = []
    words = set(re.findall(r"\w+", expr))
    if not _aggregates(expr):
        words |= {"instance", "job"}  # a raw series keeps its target's labels
    for body in TEMPLATE.findall(text):
        match = TEMPLATE_BODY.match(body)
        if not match:
            problems.append(f"template {{{{{body}}}}} is not $value / $labels.<name>")
        elif match.group("label") and match.group("label") not in words:
            problems.append(f"$labels.{match.group('label')}: not a label of the expression")
    if text.count("{{") != text.count("}}"):
        problems.append("unbalanced {{ }}")
    return problems


def rule_file_problems(document) -> list[str]:
    """What Prometheus would refuse to load, or what our conventions forbid."""
    if not isinstance(document, dict) or set(document) != FILE_KEYS:
        return ["the file must hold exactly `groups`"]
    problems = []
    group_names = set()
    seen_alerts = set()
    for group in document["groups"]:
        name = group.get("name")
        if not name:
            problems.append("a group without a name")
        elif name in group_names:
            problems.append(f"group {name}: duplicate name")
        group_names.add(name)
        problems += [f"group {name}: unknown key {key}" for key in set(group) - GROUP_KEYS]
        if not group.get("rules"):
            problems.append(f"group {name}: no rules")
        for rule in group.get("rules") or []:
            alert = rule.get("alert")
            where = f"group {name}, alert {alert}"
            problems += [f"{where}: unknown key {key}" for key in set(rule) - RULE_KEYS]
            if not isinstance(alert, str) or not METRIC_NAME.match(alert):
                problems.append(f"{where}: the alert name must be a valid metric name")
            for key in ("for", "keep_firing_for"):
                if key in rule and not (
                    isinstance(rule[key], str) and rule[key] and DURATION.match(rule[key])
                ):
                    problems.append(f"{where}: {key} {rule[key]!r} is not a duration")
            if "for" not in rule:
                problems.append(f"{where}: no `for` (one bad scrape would page)")
            expr = rule.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                problems.append(f"{where}: no expr")
                continue
            expr_problems = promql_problems(expr)
            problems += [f"{where}: {problem}" for problem in expr_problems]
            labels = rule.get("labels") or {}
            annotations = rule.get("annotations") or {}
            for label in list(labels) + list(annotations):
                if not LABEL_NAME.match(label) or label.startswith("__"):
                    problems.append(f"{where}: {label!r} is not a valid label name")
            if labels.get("severity") not in SEVERITIES:
                problems.append(f"{where}: severity {labels.get('severity')!r} not in {SEVERITIES}")
            if (alert, labels.get("severity")) in seen_alerts:
                problems.append(f"{where}: a second rule of this name and severity")
            seen_alerts.add((alert, labels.get("severity")))
            for key in ("summary", "description"):
                if not str(annotations.get(key) or "").strip():
                    problems.append(f"{where}: no annotations.{key}")
            if expr_problems:
                continue
            for key, text in annotations.items():
                problems += [f"{where}, {key}: {p}" for p in template_problems(str(text), expr)]
    return problems


def rule_exprs(document) -> list[str]:
    return [rule["expr"] for group in document["groups"] for rule in group["rules"]]


# --- Grafana ---------------------------------------------------------------------------------
def _panels(dashboard) -> list[dict]:
    panels = []
    for panel in dashboard.get("panels", []):
        panels.append(panel)
        panels += panel.get("panels", [])  # a row's (collapsed) panels
    return panels


def grafana_expr(expr: str) -> str:
    """A target's query as Prometheus sees it: Grafana's variables ($__rate_interval, ...) are
    durations in our queries."""
    return GRAFANA_VARIABLE.sub("5m", expr)


def dashboard_problems(dashboard, datasource_uid: str) -> list[str]:
    problems = []
    for key in ("uid", "title", "schemaVersion", "panels"):
        if key not in dashboard:
            problems.append(f"no {key}")
    ids = [panel.get("id") for panel in _panels(dashboard)]
    if len(ids) != len(set(ids)) or None in ids:
        problems.append(f"panel ids are not unique: {sorted(map(str, ids))}")
    occupied: dict[tuple[int, int], str] = {}
    top_level = [id(panel) for panel in dashboard.get("panels", [])]
    for panel in _panels(dashboard):
        title = panel.get("title")
        grid = panel.get("gridPos") or {}
        if not all(isinstance(grid.get(key), int) for key in ("x", "y", "w", "h")):
            problems.append(f"{title}: no gridPos")
        elif grid["x"] + grid["w"] > 24:
            problems.append(f"{title}: wider than the 24-column grid")
        elif id(panel) in top_level:  # a collapsed row's panels are laid out when it opens
            cells = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            if overlapped := sorted({occupied[cell] for cell in cells & set(occupied)}):
                problems.append(f"{title}: overlaps {overlapped}")
            occupied.update(dict.fromkeys(cells, title))
        if panel.get("type") == "row":
            continue
        if not panel.get("targets"):
            problems.append(f"{title}: no targets")
        datasources = [panel.get("datasource")]
        datasources += [target.get("datasource") for target in panel.get("targets", [])]
        for datasource in datasources:
            if datasource != {"type": "prometheus", "uid": datasource_uid}:
                problems.append(f"{title}: datasource {datasource} is not uid {datasource_uid}")
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if not expr:
                problems.append(f"{title}: a target without expr")
                continue
            problems += [f"{title}: {p}" for p in promql_problems(grafana_expr(expr))]
    return problems


def dashboard_exprs(dashboard) -> list[str]:
    return [
        grafana_expr(target["expr"])
        for panel in _panels(dashboard)
        for target in panel.get("targets", [])
    ]


# --- Prometheus config and compose -----------------------------------------------------------
def _jobs(config) -> dict[str, dict]:
    return {job["job_name"]: job for job in config.get("scrape_configs", [])}


def _compose_mounts(service) -> dict[str, str]:
    """container path -> host path of a service's bind mounts."""
    mounts = {}
    for volume in service.get("volumes", []):
        host, container = volume.split(":")[:2]
        mounts[container] = host
    return mounts


def prometheus_problems(config, compose, rules, dashboard=None) -> list[str]:
    problems = []
    jobs = _jobs(config)
    problems += [f"no scrape job {job}" for job in sorted(JOBS - set(jobs))]
    exprs = rule_exprs(rules) + (dashboard_exprs(dashboard) if dashboard else [])
    selected = set().union(*map(job_values, exprs))
    for job in sorted(selected - set(jobs)):
        problems.append(f"the queries select job {job}, not scraped")
    service = compose["services"].get("prometheus", {})
    mounts = _compose_mounts(service)
    for rule_file in config.get("rule_files") or ["(none)"]:
        if mounts.get(rule_file) != "./deploy/prometheus/alerts.yml":
            problems.append(f"rule file {rule_file} is not deploy/prometheus/alerts.yml in compose")
    config_file = next(
        (arg.split("=", 1)[1] for arg in service.get("command", []) if "--config.file=" in arg),
        None,
    )
    if mounts.get(config_file or "") != "./deploy/prometheus/prometheus.yml":
        problems.append(f"compose does not run prometheus with prometheus.yml ({config_file})")
    if "tds-worker" in jobs:
        worker = compose["services"]["worker"]
        port = str(worker.get("environment", {}).get("WORKER_METRICS_PORT"))
        discovery = (jobs["tds-worker"].get("dns_sd_configs") or [{}])[0]
        if discovery.get("names") != ["worker"] or str(discovery.get("port")) != port:
            problems.append(f"tds-worker must resolve `worker` on WORKER_METRICS_PORT {port}")
        if port not in [str(exposed) for exposed in worker.get("expose", [])]:
            problems.append(f"the worker service does not expose {port}")
    if "tds-api" in jobs:
        targets = [t for c in jobs["tds-api"].get("static_configs", []) for t in c["targets"]]
        api = compose["services"]["api"]
        hosts = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", api["environment"]["DJANGO_ALLOWED_HOSTS"])
        if targets != [f"api:{api['environment']['PORT']}"]:
            problems.append(f"tds-api targets {targets}, not the api service's port")
        elif "api" not in hosts.split(","):
            problems.append("the API would answer Prometheus' Host `api` with 400")
    return problems


# --- the real files --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rules():
    return _yaml(ALERTS)


@pytest.fixture(scope="module")
def dashboard():
    return json.loads(DASHBOARD.read_text())


@pytest.fixture(scope="module")
def datasource_uid():
    (datasource,) = _yaml(DATASOURCES)["datasources"]
    return datasource["uid"]


@pytest.fixture(scope="module")
def config():
    return _yaml(PROMETHEUS)


@pytest.fixture(scope="module")
def compose():
    return _yaml(COMPOSE)


def test_the_alert_rules_load_and_name_only_exported_metrics(rules):
    assert rule_file_problems(rules) == []
    assert len(rule_exprs(rules)) >= 10


def test_the_issue_s_alerts_are_there(rules):
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    for name, metric in [
        ("TdsDueBacklogGrowing", "tds_messages_due"),
        ("TdsOldestDueMessageTooOld", "tds_oldest_due_message_age_seconds"),
        ("TdsSendErrorRatioHigh", "tds_sends_total"),
        ("TdsNoWorkerConsuming", "tds_sends_total"),
        ("TdsNoWorkerTargetUp", 'up{job="tds-worker"}'),
        ("TdsBeatNotSweeping", "tds_last_sweep_timestamp_seconds"),
        ("TdsApiDown", 'up{job="tds-api"}'),
        ("TdsApiLatencyHigh", "tds_http_request_duration_seconds_bucket"),
        ("TdsGatewayRefusing", "tds_gateway_responses_total"),
        ("TdsBrokerQueueGrowing", "tds_broker_queue_length"),
    ]:
        assert metric in alerts[name]["expr"], name
    # A missing sum (no worker series at all) must count as no sends.
    assert "vector(0)" in alerts["TdsNoWorkerConsuming"]["expr"]
    # 0 is "no sweep seen": it must not read as a sweep in 1970.
    assert "> 0" in alerts["TdsBeatNotSweeping"]["expr"]


def test_the_dashboard_queries_exported_metrics_through_the_provisioned_datasource(
    dashboard, datasource_uid
):
    assert dashboard["uid"] == "task-delay-service"
    assert dashboard_problems(dashboard, datasource_uid) == []
    assert all("$__rate_interval" in e or "rate(" not in e for e in _raw_exprs(dashboard))
    assert len(dashboard_exprs(dashboard)) >= 15


def _raw_exprs(dashboard) -> list[str]:
    return [t["expr"] for panel in _panels(dashboard) for t in panel.get("targets", [])]


def test_the_provisioning_points_at_prometheus_and_the_dashboards(compose, config):
    (datasource,) = _yaml(DATASOURCES)["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    assert datasource["isDefault"] is True
    assert datasource["jsonData"]["timeInterval"] == config["global"]["scrape_interval"]
    (provider,) = _yaml(DASHBOARD_PROVIDERS)["providers"]
    assert provider["type"] == "file"
    mounts = _compose_mounts(compose["services"]["grafana"])
    assert mounts[provider["options"]["path"]] == "./deploy/grafana/dashboards"
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"


def test_prometheus_scrapes_the_jobs_the_queries_select(config, compose, rules, dashboard):
    assert config["global"]["scrape_interval"] == "15s"
    assert prometheus_problems(config, compose, rules, dashboard) == []
    for service in ("prometheus", "grafana"):
        assert compose["services"][service]["profiles"] == ["monitoring"]


# --- each check can fail ---------------------------------------------------------------------
def _first_rule(document):
    return document["groups"][0]["rules"][0]


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("sum(rate(tds_sends_total[5m]", "does not parse"),
        ("max(tds_messages_pending)", "not a metric of api.metrics.METRICS"),
        ("rate(tds_sends[5m]) > 0", "tds_sends is not a metric"),
        ("tds_http_request_duration_seconds > 1", "is a histogram"),
        ("rate(tds_sends_total_bucket[5m]) > 0", "tds_sends_total_bucket is not a metric"),
        ("rate(tds_messages_due[5m]) > 0", "rate() of tds_messages_due, a gauge"),
        ("deriv(tds_sends_total[15m]) > 0", "deriv() of tds_sends_total, a counter"),
        ("tds_messages_due[5m]", "range vector"),
        ('{job="tds-api"} == 0', "without a metric name"),
        ("max(tds_messages_due) unless on() group_left up", "does not parse"),
    ],
)
def test_the_promql_check_can_fail(expr, problem):
    problems = promql_problems(expr)
    assert any(problem in p for p in problems), problems


def test_the_promql_check_accepts_what_we_use():
    assert promql_problems('{__name__="tds_messages_due"} > 0') == []
    assert promql_problems("rate(tds_send_duration_seconds_count[5m])") == []
    assert promql_problems('absent(up{job="tds-worker"} == 1)') == []
    assert grafana_expr("rate(x[$__rate_interval]) + rate(x[${__range}])") == (
        "rate(x[5m]) + rate(x[5m])"
    )


def _mutate_rule(**changes):
    def mutate(document):
        rule = _first_rule(document)
        for key, value in changes.items():
            if value is None:
                rule.pop(key, None)
            else:
                rule[key] = value

    return mutate


def _duplicate_group(document):
    document["groups"].append(copy.deepcopy(document["groups"][0]))


def _unknown_group_key(document):
    document["groups"][0]["evaluation_interval"] = "1m"


def _set_severity(value):
    def mutate(document):
        _first_rule(document)["labels"] = {"severity": value}

    return mutate


def _drop_summary(document):
    _first_rule(document)["annotations"].pop("summary")


def _summary(text):
    def mutate(document):
        _first_rule(document)["annotations"]["summary"] = text

    return mutate


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (_duplicate_group, "duplicate name"),
        (_unknown_group_key, "unknown key evaluation_interval"),
        (_mutate_rule(severity="critical"), "unknown key severity"),
        (_mutate_rule(**{"for": "10 minutes"}), "is not a duration"),
        (_mutate_rule(**{"for": "5m10m"}), "is not a duration"),
        (_mutate_rule(**{"for": None}), "no `for`"),
        (_mutate_rule(alert="Tds Backlog"), "valid metric name"),
        (_mutate_rule(expr="max(tds_messages_due > 1000"), "does not parse"),
        (_mutate_rule(expr="max(tds_due_messages) > 1000"), "not a metric"),
        (_set_severity("page"), "severity 'page'"),
        (_drop_summary, "no annotations.summary"),
        (_summary("{{ $value | humanise }}"), "is not $value"),
        (_summary("{{ $labels.route }} is slow"), "$labels.route: not a label"),
        (_summary("{{ $value "), "unbalanced"),
    ],
)
def test_the_rule_file_check_can_fail(rules, mutate, problem):
    broken = copy.deepcopy(rules)
    mutate(broken)
    problems = rule_file_problems(broken)
    assert any(problem in p for p in problems), problems


def test_two_rules_of_one_name_need_two_severities(rules):
    broken = copy.deepcopy(rules)
    broken["groups"][0]["rules"].append(copy.deepcopy(_first_rule(broken)))
    assert any("a second rule" in p for p in rule_file_problems(broken))
    assert rule_file_problems({"groups": [], "recording": []}) != []


def _panel_with_targets(dashboard):
    return next(p for p in _panels(dashboard) if p.get("targets"))


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda d: d["panels"].append(copy.deepcopy(d["panels"][-1])), "not unique"),
        (
            lambda d: _panel_with_targets(d)["targets"][0].update(expr="sum(tds_sends_count)"),
            "tds_sends_count is not a metric",
        ),
        (
            lambda d: _panel_with_targets(d)["targets"][0].update(expr="rate(x[$__rate_interval"),
            "does not parse",
        ),
        (
            lambda d: _panel_with_targets(d).update(datasource={"type": "prometheus", "uid": "x"}),
            "is not uid prometheus",
        ),
        (lambda d: _panel_with_targets(d)["targets"][0].pop("expr"), "without expr"),
        (lambda d: _panel_with_targets(d)["gridPos"].update(x=20, w=12), "wider than"),
        (lambda d: _panel_with_targets(d)["gridPos"].update(y=0), "overlaps"),
    ],
)
def test_the_dashboard_check_can_fail(dashboard, datasource_uid, mutate, problem):
    broken = copy.deepcopy(dashboard)
    mutate(broken)
    problems = dashboard_problems(broken, datasource_uid)
    assert any(problem in p for p in problems), problems


def _select_job(job):
    def mutate(config, compose, rules):
        _first_rule(rules)["expr"] = f'up{{job="{job}"}} == 0'

    return mutate


def _rename_job(config, compose, rules):
    _jobs(config)["tds-worker"]["job_name"] = "worker"


def _worker_port(config, compose, rules):
    _jobs(config)["tds-worker"]["dns_sd_configs"][0]["port"] = 9100


def _allowed_hosts(config, compose, rules):
    compose["services"]["api"]["environment"]["DJANGO_ALLOWED_HOSTS"] = "localhost"


def _rule_file(config, compose, rules):
    config["rule_files"] = ["/etc/prometheus/rules.yml"]


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (_select_job("tds_api"), "select job tds_api, not scraped"),
        (_rename_job, "no scrape job tds-worker"),
        (_worker_port, "on WORKER_METRICS_PORT 9808"),
        (_allowed_hosts, "Host `api`"),
        (_rule_file, "rule file /etc/prometheus/rules.yml"),
    ],
)
def test_the_prometheus_check_can_fail(config, compose, rules, mutate, problem):
    config, compose, rules = copy.deepcopy((config, compose, rules))
    mutate(config, compose, rules)
    problems = prometheus_problems(config, compose, rules)
    assert any(problem in p for p in problems), problems
