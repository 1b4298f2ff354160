"""``deploy/``: the Grafana dashboard and the Prometheus rules are valid, and every metric they
query is one that the API or the worker really exposes (scraped after requests of each outcome).

``promtool`` is not packaged for this machine's Python; PromQL is parsed with ``promql-parser``
(the Rust ``promql-parser`` crate's bindings), YAML with PyYAML.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml  # type: ignore[import-untyped]

from careflow.settings import Settings
from persistence.store import Store
from tests.conftest import serve_api
from tests.factories import ehr_webhook
from tests.observability import (
    EHR_REQUEST,
    alert_receiver,
    assert_no_phi,
    metric_labels,
    metric_names,
    metrics_worker,
)
from tests.workflows.test_telemetry import RefusingBackend, alert_settings, doomed_webhook

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "careflow-webhooks.json"
RULES = DEPLOY / "prometheus" / "rules.yml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
# Series Prometheus makes itself for every target.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def rule_queries() -> list[str]:
    rules = yaml.safe_load(RULES.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def selectors(expr: str) -> set[str]:
    """The metric names an expression selects (``$__rate_interval`` read as 5m)."""
    tree = promql_parser.parse(expr.replace("$__rate_interval", "5m"))
    names: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            names.add(node.name)

    promql_parser.walk(tree, visit)
    return names


def test_dashboard_is_grafana_json_on_the_provisioned_datasource() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["panels"]
    datasource = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ("outcome", "failed", "ack latency", "schedule-to-start", "backend errors"):
        assert topic in titles, topic
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"]
        assert panel["targets"], panel["title"]


def test_rules_parse_and_have_the_prometheus_fields() -> None:
    rules = yaml.safe_load(RULES.read_text())
    names = [rule["alert"] for group in rules["groups"] for rule in group["rules"]]
    assert len(names) == len(set(names))
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert rule["labels"]["severity"] in {"warning", "critical"}
            promql_parser.parse(rule["expr"])
    config = yaml.safe_load(PROMETHEUS.read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules.yml"]
    assert {job["job_name"] for job in config["scrape_configs"]} == {
        "careflow-api",
        "careflow-worker",
    }


@pytest.mark.parametrize("source", ["dashboard", "rules"])
def test_queries_parse(source: str) -> None:
    queries = dashboard_queries() if source == "dashboard" else rule_queries()
    assert queries
    for expr in queries:
        assert selectors(expr), expr


async def test_every_queried_metric_is_exposed(settings: Settings, store: Store) -> None:
    """Requests of each outcome (SUCCESS, REJECTED, TEST, FAILED with a backend refusal, an
    alert refused once then delivered), then both endpoints are scraped."""
    async with alert_receiver(204, 500) as receiver:
        configured, _ = alert_settings(settings, receiver.url)
        async with (
            serve_api(configured) as api,
            metrics_worker(configured, store, backend=RefusingBackend(store)) as worker,
        ):
            hook_id = await ehr_webhook(api)
            doomed_id = await doomed_webhook(api)
            ok = await api.http.post(f"/hooks/{hook_id}", json=EHR_REQUEST)
            await api.http.post(f"/hooks/{hook_id}", json={"reason": 1})
            await api.http.post(f"/hooks/{hook_id}/test", json=EHR_REQUEST)
            doomed = await api.http.post(f"/hooks/{doomed_id}", json={"reason": "x"})
            await api.wait_status(ok.json()["request_id"], {"SUCCESS"})
            await api.wait_status(doomed.json()["request_id"], {"FAILED"})
            await asyncio.wait_for(receiver.arrived.wait(), timeout=30)
            await asyncio.sleep(0.5)
            api_text = (await api.http.get("/metrics")).text
            worker_text = await worker.scrape()
    exposed = metric_names(api_text) | metric_names(worker_text) | SYNTHETIC
    queried = set().union(*(selectors(e) for e in dashboard_queries() + rule_queries()))
    assert queried - exposed == set()
    assert_no_phi(metric_labels(api_text) + metric_labels(worker_text))
