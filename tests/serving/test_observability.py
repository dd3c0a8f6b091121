"""/metrics, /healthz and /readyz on both backends, through the real app and real databases."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import pytest

from api import create_app
from ledger.bootstrap import build
from projections.catalog import NAMES, runner_for

CUSTOMER = "/customers/<uuid:aggregate_id>"
LATENCY = "caseledger_http_request_duration_seconds"


@pytest.fixture
def scrape(api, parse_metrics):
    def get() -> dict:
        response = api.get("/metrics", as_=None)
        assert response.status_code == 200
        assert response.content_type.startswith("text/plain")
        return parse_metrics(response.get_data(as_text=True))

    return get


def _count(found: dict, method: str, endpoint: str, status: str) -> float:
    return found.get((f"{LATENCY}_count", frozenset({"method": method, "endpoint": endpoint, "status": status}.items())), 0)


def test_metrics_count_requests_per_url_rule_and_read_the_ledger(api, ledger, scrape):
    before = scrape()
    created = api.post("/customers", json={"kind": "individual", "tier": "vip", "contact": {"name": "赵六"}})
    assert created.status_code == 201
    for _ in range(3):
        assert api.get(f"/customers/{created.json['id']}").status_code == 200
    assert api.get(f"/customers/{uuid.uuid4()}").status_code == 404
    stored = ledger.recorder.select_notifications(start=1, limit=100_000)
    runner = runner_for(ledger)
    # Read first: a scrape may itself move a read model on (the scheduler's hook catches up the
    # job history), after our lag figures are taken.
    expected = {s.name: s.lag for s in runner.status()}
    runner.close()

    after = scrape()
    assert _count(after, "GET", CUSTOMER, "200") - _count(before, "GET", CUSTOMER, "200") == 3
    assert _count(after, "GET", CUSTOMER, "404") - _count(before, "GET", CUSTOMER, "404") == 1
    assert _count(after, "POST", "/customers", "201") - _count(before, "POST", "/customers", "201") == 1
    # Raw paths never become labels: ids would make the series unbounded.
    assert not any(created.json["id"] in dict(labels).get("endpoint", "") for _, labels in after)

    assert after[("caseledger_events_total", frozenset())] == len(stored) > before[("caseledger_events_total",
                                                                                    frozenset())]
    assert after[("caseledger_database_up", frozenset())] == 1
    assert after[("caseledger_events_since_checkpoint", frozenset())] == len(stored)  # none signed yet
    head = stored[-1].id
    assert after[("caseledger_log_head_position", frozenset())] == head
    assert {name: after[("caseledger_projection_lag", frozenset({("projection", name)}))] for name in NAMES} == expected
    assert expected["ticket_list"] == head  # nothing has projected the cases yet


def test_health_and_readiness_need_no_token(api):
    assert api.get("/healthz", as_=None).json == {"status": "ok"}
    ready = api.get("/readyz", as_=None)
    assert ready.status_code == 200
    assert ready.json == {"status": "ready", "checks": {"database": "reachable", "tables": "present"}}
    assert api.get("/events", as_=None).status_code == 401  # everything else still needs one


def _drop_log_leaves(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url[len("sqlite:///"):]) as conn:
            conn.execute("DROP TABLE merkle_leaves")
        return
    dsn, _, query = database_url.partition("?")
    schema = query.split("schema=")[1]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP TABLE "{schema}".merkle_leaves')


def test_readyz_is_503_problem_when_tables_are_missing(api, database_url):
    _drop_log_leaves(database_url)
    response = api.get("/readyz", as_=None)
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    body = response.json
    assert body["type"].endswith("/not-ready") and body["status"] == 503
    assert "merkle_leaves" in body["detail"]
    assert body["checks"] == {"database": "reachable", "tables": "missing: merkle_leaves"}
    assert response.headers["Retry-After"]


def _unreachable_app(database_url: str, tmp_path: Path, relay_to):
    """An app whose database can be cut off: a relay in front of PostgreSQL, or a file to remove."""
    env = {"CASELEDGER_HOME": str(tmp_path / "home")}
    if database_url.startswith("sqlite"):
        env["CASELEDGER_DATABASE_URL"] = database_url
        path = Path(database_url[len("sqlite:///"):])
        return build(env), env, lambda: path.unlink()
    url = urlparse(database_url)
    relay = relay_to(url.hostname, url.port)
    env["CASELEDGER_DATABASE_URL"] = url._replace(netloc=f"{url.username}@127.0.0.1:{relay.port}").geturl()
    return build(env), env, relay.cut


def test_readyz_is_503_problem_when_the_database_is_unreachable(database_url, tmp_path, tokens, relay_to,
                                                               parse_metrics):
    ledger, env, cut_off = _unreachable_app(database_url, tmp_path, relay_to)
    client = create_app(env, ledger, tokens=tokens[0]).test_client()
    try:
        assert client.get("/readyz").status_code == 200
        cut_off()
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.content_type == "application/problem+json"
        assert response.json["detail"].startswith("database unreachable: ")
        assert response.json["checks"] == {"database": "unreachable"}
        assert client.get("/healthz").status_code == 200  # alive, just not ready
        found = parse_metrics(client.get("/metrics").get_data(as_text=True))
        assert found[("caseledger_database_up", frozenset())] == 0
    finally:
        ledger.close()


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_public_endpoints_answer_only_reads(api, path):
    assert api.post(path, as_=None).status_code in (401, 405)  # no public writes


def test_job_runs_are_counted_from_the_log_by_job_and_outcome(api, ledger, ctx, scrape):
    from domain.jobs import JobRun

    def run(job: str, fail: bool) -> None:
        c = ctx("scheduler", "service")
        job_run = JobRun.start(id=uuid.uuid4(), job=job, trigger="manual", instance="test",
                               policy=ledger.policy_for_new_case(c), ctx=c)
        ledger.save(job_run)  # started and finished in separate transactions, as the scheduler does
        policy = ledger.policy_of(job_run)
        if fail:
            job_run.fail(reason="database went away", policy=policy, ctx=ctx("scheduler", "service"))
        else:
            job_run.finish(counts={"breaches": 2}, details={}, policy=policy, ctx=ctx("scheduler", "service"))
        ledger.save(job_run)

    run("sla", fail=False)
    before = scrape()  # the tally reads incrementally: later runs add to what it has seen
    run("sla", fail=False)
    run("retention", fail=True)
    found = scrape()
    counts = {dict(labels)["job"] + "/" + dict(labels)["outcome"]: value
              for (name, labels), value in found.items() if name == "caseledger_job_runs_total"}
    # Each ended run once (issue 23: counting "started" too counted every run twice).
    assert counts == {"sla/finished": 2, "retention/failed": 1}
    assert found[("caseledger_job_last_run_failed", frozenset({("job", "retention")}))] == 1
    assert found[("caseledger_job_last_run_failed", frozenset({("job", "sla")}))] == 0
    assert before[("caseledger_job_runs_total", frozenset({("job", "sla"), ("outcome", "finished")}))] == 1
