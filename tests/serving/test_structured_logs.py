"""One JSON log format for every process, with request id, actor and job run id as fields."""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import UTC, datetime

import pytest

from ledger import structured_logs
from scheduler.runner import run_job


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level, process = list(root.handlers), root.level, structured_logs._process
    gunicorn = {name: (list(logging.getLogger(name).handlers), logging.getLogger(name).propagate)
                for name in ("gunicorn.error", "gunicorn.access", "caseledger.requests")}
    # As in a process that configured its logs first: the request log has no handler of its own.
    logging.getLogger("caseledger.requests").handlers[:] = []
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structured_logs._process = process
    for name, (saved, propagate) in gunicorn.items():
        logging.getLogger(name).handlers[:] = saved
        logging.getLogger(name).propagate = propagate


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_a_line_has_the_common_fields_and_the_bound_context(restore_logging, capsys):
    structured_logs.configure("projections")
    log = logging.getLogger("caseledger.test")
    with structured_logs.bind(request_id="r-1", actor="agent-li"):
        log.warning("read model %s is %d behind", "ticket_list", 12)
    log.info({"event": "batch", "applied": 3})
    try:
        raise ValueError("bad")
    except ValueError:
        log.exception("failed")
    first, second, third = json_lines(capsys.readouterr().err)
    assert {k: first[k] for k in ("level", "logger", "process", "message", "request_id", "actor")} == {
        "level": "warning", "logger": "caseledger.test", "process": "projections",
        "message": "read model ticket_list is 12 behind", "request_id": "r-1", "actor": "agent-li"}
    assert datetime.fromisoformat(first["time"]).tzinfo is not None
    assert second["event"] == "batch" and second["applied"] == 3 and "request_id" not in second  # unbound again
    assert third["message"] == "failed" and "ValueError: bad" in third["exc_info"]


@pytest.mark.integration
def test_a_scheduled_runs_lines_carry_its_run_id(restore_logging, capsys, ledger, env):
    structured_logs.configure("scheduler")
    outcome = run_job(ledger, "sla_clocks", datetime.now(UTC), settings=env)
    lines = [line for line in json_lines(capsys.readouterr().err) if line["logger"] == "caseledger.scheduler"]
    assert lines and all(line["job_run_id"] == outcome.run_id and line["process"] == "scheduler" for line in lines)
    assert any("sla_clocks finished" in line["message"] for line in lines)


@pytest.mark.integration
def test_requests_log_one_json_line_with_request_id_and_actor(restore_logging, capsys, ledger, env):
    from api import create_app
    from services.tokens import TokenService, system_context

    structured_logs.configure("api")
    secret, _ = TokenService(ledger).issue("auditor-he", "auditor", None, ctx=system_context("test-setup"))
    client = create_app(env, ledger).test_client()
    response = client.get("/events?limit=1", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200
    [line] = [line for line in json_lines(capsys.readouterr().err) if line.get("event") == "request"]
    assert line["request_id"] == response.headers["X-Request-Id"] and line["actor"] == "auditor-he"
    assert line["process"] == "api" and line["status"] == 200 and line["level"] == "info"


def test_gunicorns_own_log_uses_the_same_format(restore_logging, capsys):
    logging.config.dictConfig(structured_logs.gunicorn_logconfig("api"))
    logging.getLogger("gunicorn.error").info("Booting worker with pid: %s", 42)
    [line] = json_lines(capsys.readouterr().err)
    assert line["logger"] == "gunicorn.error" and line["message"] == "Booting worker with pid: 42"
    assert line["process"] == "api"
