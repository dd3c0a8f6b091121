"""Export jobs over HTTP for auditors (issue #20 item 5): request, progress, download of a bundle that
verifies offline; permission-checked, every download recorded; a failed, interrupted or tampered job
is never served. Both backends."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import pytest

from domain.context import Context
from domain.exports import ExportJob
from ledger.integrity.bundle import verify_bundle
from ledger.integrity.trust import TrustSet
from ledger.keys import LogKeys
from ledger.settings import Settings

PERIOD = {"scope": "period", "from": "2025-09-01T00:00:00+08:00", "to": "2025-09-02T00:00:00+08:00"}


@pytest.fixture
def keys(env) -> LogKeys:
    keys = LogKeys.from_settings(Settings.from_environ(env))
    keys.init()
    return keys


def wait(api, job_id: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        state = api.get(f"/exports/{job_id}", as_="auditor")
        assert state.status_code == 200, state.json
        if state.json["status"] != "requested" or time.monotonic() > deadline:
            return state.json
        time.sleep(0.1)


def test_auditor_exports_a_period_and_downloads_a_bundle_that_verifies(api, ledger, keys, customer_id, tmp_path):
    ticket = api.post("/tickets", json={"customer_id": customer_id, "channel": "web", "summary": "slow"})
    assert ticket.status_code == 201, ticket.json
    created = api.post("/exports", as_="auditor", json=PERIOD)
    assert created.status_code == 202, created.json
    assert created.json["links"]["self"] == f"/exports/{created.json['id']}"
    state = wait(api, created.json["id"])
    assert state["status"] == "completed" and state["done"] == state["total"] == state["events"] > 0, state
    download = api.get(state["links"]["bundle"], as_="auditor")
    assert download.status_code == 200 and download.mimetype == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(download.data), mode="r:gz") as archive:
        archive.extractall(tmp_path, filter="data")
    folder = next(tmp_path.glob("caseledger-bundle-*"))
    summary = verify_bundle(folder, TrustSet([keys.verifier_text()]))
    assert summary["events"] == state["events"] and summary["scope"]["kind"] == "period"
    events = ledger.history("export_job", state["id"], limit=10)
    assert [type(e).__qualname__ for e in events] == ["ExportJob.Requested", "ExportJob.Completed",
                                                      "ExportJob.Downloaded"]
    assert events[-1].meta["actor_id"] == "auditor-he"  # who took the copy is on record
    assert api.get(f"/exports/{state['id']}", as_="auditor").json["downloads"] == 1


def test_other_roles_may_not_export(api, keys):
    assert api.post("/exports", as_="agent", json=PERIOD).status_code == 403
    created = api.post("/exports", as_="auditor", json=PERIOD)
    assert api.get(f"/exports/{created.json['id']}", as_="agent").status_code == 403
    assert api.get(f"/exports/{created.json['id']}/bundle", as_="lead").status_code == 403
    assert wait(api, created.json["id"])["status"] == "completed"


def test_bad_requests_are_problems(api, keys):
    answer = api.post("/exports", as_="auditor", json={"scope": "period", "from": "2025-09-01T00:00:00+08:00"})
    assert answer.status_code == 422 and answer.mimetype == "application/problem+json"
    answer = api.post("/exports", as_="auditor", json={"scope": "ticket"})
    assert answer.status_code == 422


def test_failed_job_is_recorded_and_never_served(api, keys):
    created = api.post("/exports", as_="auditor", json={"scope": "ticket", "id": "00000000-0000-4000-8000-000000000000"})
    assert created.status_code == 202
    state = wait(api, created.json["id"])
    assert state["status"] == "failed" and "no ticket" in state["reason"] and state["links"]["bundle"] is None
    refused = api.get(f"/exports/{created.json['id']}/bundle", as_="auditor")
    assert refused.status_code == 409 and refused.json["rule"] == "export.download_completed"


def test_interrupted_job_and_tampered_archive(api, app, ledger, keys, env):
    orphan = ExportJob.request(id=__import__("uuid").uuid4(), scope={"kind": "range"},
                               policy=ledger.policies.in_force(app.extensions["caseledger.clock"](), ledger.policy_name),
                               ctx=Context("auditor-he", "auditor", app.extensions["caseledger.clock"](), "r-1"))
    ledger.record(orphan)  # requested, and no worker ever beat for it: as after a restart
    assert api.get(f"/exports/{orphan.id}", as_="auditor").json["status"] == "interrupted"
    created = api.post("/exports", as_="auditor", json=PERIOD)
    state = wait(api, created.json["id"])
    archive = Path(env["CASELEDGER_HOME"]) / "exports" / f"{state['id']}.tar.gz"
    archive.write_bytes(archive.read_bytes() + b"\0")
    refused = api.get(state["links"]["bundle"], as_="auditor")
    assert refused.status_code == 409 and "no longer matches" in refused.json["detail"]
    assert api.get(f"/exports/{state['id']}", as_="auditor").json["downloads"] == 0
