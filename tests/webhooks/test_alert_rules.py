"""deploy/prometheus-alerts.yml: well formed, and every metric an alert uses is served by /metrics."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from api import create_app
from ledger.keys import LogKeys
from ledger.settings import Settings
from scheduler.runner import run_job

pytestmark = pytest.mark.integration
RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus-alerts.yml"
METRIC = re.compile(r"\b(caseledger_[a-z0-9_]+)")


def alert_rules() -> list[dict]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_alert_is_complete():
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)) >= 3
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning", "info") and rule["annotations"]["summary"]
        assert METRIC.search(rule["expr"]), f"{rule['alert']} uses no caseledger metric"
    # The failures issue 23 names: the integrity job failed, read models lag, a job did not run.
    exprs = " ".join(rule["expr"] for rule in rules)
    for wanted in ("caseledger_job_last_run_failed", "caseledger_projection_lag",
                   "caseledger_job_last_success_timestamp_seconds"):
        assert wanted in exprs


def test_every_metric_the_alerts_use_is_served(ledger, env):
    settings = Settings.from_environ(env)
    LogKeys.from_settings(settings).ensure()
    now = datetime.now(UTC)
    for job in ("integrity", "sla_clocks"):  # one run each, so the per-job series exist
        assert run_job(ledger, job, now, settings=settings).status == "finished"
    client = create_app(env, ledger).test_client()
    response = client.get("/metrics")
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.get_data(as_text=True))}
    served = set(families) | {s.name for f in families.values() for s in f.samples}
    used = {name for rule in alert_rules() for name in METRIC.findall(rule["expr"])}
    assert used - served == set()
    success = {s.labels["job"]: s.value for s in families["caseledger_job_last_success_timestamp_seconds"].samples}
    assert set(success) == {"integrity", "sla_clocks"} and all(abs(v - now.timestamp()) < 300 for v in success.values())
    assert {s.labels["job"]: s.value for s in families["caseledger_job_last_run_failed"].samples} == {
        "integrity": 0.0, "sla_clocks": 0.0}
    assert [s.value for s in families["caseledger_verification_ok"].samples] == [1.0]
