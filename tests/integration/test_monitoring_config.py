"""Prometheus rules, scrape config and the Grafana dashboard are valid and query real series."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from server.settings import Settings
from tests.conftest import REQUIRE_SERVICES, SettingsFactory
from tests.fakes.server_thread import ServedApp
from tests.helpers import chat_body

Serve = Callable[[Settings], ServedApp]

MONITORING = Path(__file__).resolve().parents[2] / "infra" / "monitoring"
GRAFANA = MONITORING / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))

#: Series Prometheus makes itself for every scrape target.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created", ""),
    "gauge": ("",),
}


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects (functions, labels and keywords removed)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", " ", expr)  # range selectors
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\$\w+", " ", expr)  # Grafana variables such as $__rate_interval
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", expr):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in PROMQL_WORDS:
            continue
        names.add(name)
    return names


def rule_expressions() -> Iterator[tuple[str, str]]:
    for group in yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            yield rule.get("alert") or rule["record"], rule["expr"]


def dashboard_expressions() -> Iterator[tuple[str, str]]:
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                yield f"{path.name}: {panel['title']}", target["expr"]


def exported_series(text: str) -> set[str]:
    """Every series name the exposition can contain, from its families (samples or not)."""
    names = set()
    for family in text_string_to_metric_families(text):
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return names


@pytest.fixture
def exposed(make_settings: SettingsFactory, serve: Serve) -> set[str]:
    """The series a running service exports after a chat turn with a tool call."""
    app = serve(make_settings())
    reply = httpx.post(
        f"{app.url}/v1/chat/completions",
        json=chat_body(("user", "what is 12*3?")),
        headers={"X-Thread-Id": "monitoring"},
        timeout=30,
    )
    assert reply.status_code == 200
    return exported_series(httpx.get(f"{app.url}/metrics").text)


def test_the_name_parser_finds_metrics_and_skips_promql_syntax() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(agent_x_bucket{route!="/m"}[5m])))'
        " / clamp_min(sum(rate(agent_y_total[$__rate_interval])), 1e-9) > 0.5 and up == 0"
    )
    assert metric_names(expr) == {"agent_x_bucket", "agent_y_total", "up"}


def test_every_series_in_rules_and_dashboards_is_exported(exposed: set[str]) -> None:
    queries = [*rule_expressions(), *dashboard_expressions()]
    assert len(queries) > 20
    used = {name: where for where, expr in queries for name in metric_names(expr)}
    assert any(name.startswith("agent_") for name in used)
    missing = {name: where for name, where in used.items() if name not in exposed | SYNTHETIC}
    assert not missing, f"queried but not exported: {missing}"


def test_alert_rules_are_well_formed() -> None:
    groups = yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]
    alerts = {rule["alert"]: rule for group in groups for rule in group["rules"]}
    for expected in (
        "AgentServiceDown",
        "AgentHighErrorRate",
        "AgentProviderFallbackRateHigh",
        "AgentAllProvidersDown",
        "AgentHighLatencyP99",
        "AgentCacheErrors",
    ):
        assert expected in alerts
    for name, rule in alerts.items():
        assert rule["expr"].strip(), name
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"], name


def test_scrape_config_reads_the_rules_and_scrapes_the_service() -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "agent-service"]
    assert job["metrics_path"] == "/metrics"
    # alerts.yml selects this job by name.
    assert all('job="agent-service"' in expr for name, expr in rule_expressions() if "up{" in expr)


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is not installed (apt-get install prometheus)"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["check", "rules", "alerts.yml"],
        ["check", "config", "prometheus.yml"],
        ["test", "rules", "alerts.test.yml"],
    ],
    ids=["check-rules", "check-config", "test-rules"],
)
def test_promtool_accepts_the_files(args: list[str]) -> None:
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [promtool(), *args], cwd=MONITORING, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_points_at_the_dashboard_and_the_datasource() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/agent.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    assert DASHBOARDS
    for path in DASHBOARDS:
        dashboard: dict[str, Any] = json.loads(path.read_text())
        assert dashboard["uid"]
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids))
        for panel in dashboard["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] == source["uid"], panel["title"]
                assert panel["targets"], panel["title"]
