"""Legal holds, disposition and crypto-shredding, on SQLite and PostgreSQL.

A customer with a distinctive name and phone number is registered and contacts us once; years
later their personal data is destroyed through the full four-eyes workflow. Before, the plaintext
is readable through the ledger but stored nowhere; after, the key is gone from the database files
and dumps, reading and replaying still work (showing the fields as destroyed), non-personal facts
and read models survive, the transparency log still verifies, and a rebuild equals the increments.
"""

from __future__ import annotations

import glob
import os
import subprocess
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import psycopg
import pytest

from cli.throwaway_pg import find_bindir
from domain.context import Context
from domain.errors import TransitionForbidden
from ledger.bootstrap import build, transparency_log
from ledger.keys import LogKeys
from ledger.settings import Settings
from projections.catalog import runner_for
from services.export import Scope, write_bundle
from services.retention import build_retention as retention

CST = timezone(timedelta(hours=8))
OPENED = datetime(2025, 9, 1, 9, 0, tzinfo=CST)
CLOSED = datetime(2025, 9, 30, 15, 0, tzinfo=CST)
# Contact closed 2025-09-30 → due at the start of 2028-10-01 at the earliest (at least 3 years).
LONG_AFTER = datetime(2028, 12, 1, 10, 0, tzinfo=CST)


def at(moment: datetime, actor: str, role: str, reason: str | None = None) -> Context:
    return Context(actor, role, moment, uuid.uuid4().hex, reason)


@pytest.fixture(autouse=True)
def years_later(wall_clock):
    """The wall clock reads a month after LONG_AFTER: the ledger takes the steps' business times, and
    the steps judge due dates by the wall clock (tests/retention/test_wall_clock.py)."""
    wall_clock.now = LONG_AFTER + timedelta(days=30)
    return wall_clock


@pytest.fixture
def subject(ledger):
    marker = uuid.uuid4().hex[:8]
    name, phone = f"欧阳{marker}", "139" + str(uuid.uuid4().int)[:8]
    customer = ledger.register_customer(at(OPENED, "agent-li", "agent"), kind="individual", tier="general",
                                        contact={"name": name, "phone": phone})
    contact = ledger.receive_interaction(at(OPENED + timedelta(minutes=1), "agent-li", "agent"), channel="phone",
                                         direction="inbound", customer_id=str(customer.id),
                                         content=f"{name} asked about the bill, call back on {phone}",
                                         agent_id="agent-li", queue="billing")
    ledger.act("interaction", contact.id, "close", at(CLOSED, "agent-li", "agent"), {"resolved_on_first_contact": True})
    return {"customer": str(customer.id), "interaction": str(contact.id), "name": name, "phone": phone}


@pytest.fixture
def service(ledger, env):
    r = retention(ledger, env)
    yield r
    r.close()


def dispose(service, customer_id, when=LONG_AFTER):
    d = service.propose(at(when, "records-chen", "records_manager"), customer_id)
    service.approve(at(when + timedelta(minutes=5), "compliance-qian", "compliance_officer"), str(d.id))
    return service.execute(at(when + timedelta(minutes=10), "compliance-qian", "compliance_officer"), str(d.id))


# -- refusals ------------------------------------------------------------------------------------
def test_refused_before_the_due_date(service, subject, years_later):
    years_later.now = datetime(2028, 9, 1, tzinfo=CST)
    with pytest.raises(TransitionForbidden) as refused:
        service.propose(at(datetime(2028, 9, 1, tzinfo=CST), "records-chen", "records_manager"), subject["customer"])
    assert refused.value.rule == "disposition.not_disposable"
    assert "kept until 2028-10" in str(refused.value) and subject["interaction"] in str(refused.value)


def test_refused_under_hold_and_allowed_after_release(service, subject):
    hold = service.place_hold(at(LONG_AFTER, "records-chen", "records_manager", reason="litigation 2028-17"),
                              target_kind="customer", target_id=subject["customer"], authority="Shanghai court")
    with pytest.raises(TransitionForbidden) as refused:
        service.propose(at(LONG_AFTER, "records-chen", "records_manager"), subject["customer"])
    assert refused.value.rule == "disposition.not_disposable" and str(hold.id) in str(refused.value)

    service.release_hold(at(LONG_AFTER, "compliance-qian", "compliance_officer", reason="case settled"), str(hold.id))
    d = service.propose(at(LONG_AFTER, "records-chen", "records_manager"), subject["customer"])
    # A hold placed between proposal and approval stops the approval too.
    service.place_hold(at(LONG_AFTER, "records-chen", "records_manager", reason="regulator letter"),
                       target_kind="customer", target_id=subject["customer"], authority="regulator")
    with pytest.raises(TransitionForbidden) as refused:
        service.approve(at(LONG_AFTER, "compliance-qian", "compliance_officer"), str(d.id))
    assert refused.value.rule == "disposition.not_disposable"
    assert [h["status"] for h in service.holds(subject=subject["customer"])] == ["released", "active"]


def test_hold_needs_authority_reason_and_role(service, subject):
    with pytest.raises(TransitionForbidden) as refused:
        service.place_hold(at(LONG_AFTER, "agent-li", "agent", reason="x"), target_kind="customer",
                           target_id=subject["customer"], authority="court")
    assert refused.value.rule == "hold.role"
    with pytest.raises(TransitionForbidden) as refused:
        service.place_hold(at(LONG_AFTER, "records-chen", "records_manager"), target_kind="customer",
                           target_id=subject["customer"], authority="court")
    assert refused.value.rule == "hold.reason"


def test_refused_when_proposer_approves_or_roles_are_wrong(service, subject):
    with pytest.raises(TransitionForbidden) as refused:
        service.propose(at(LONG_AFTER, "agent-li", "agent"), subject["customer"])
    assert refused.value.rule == "disposition.proposer_role"
    d = service.propose(at(LONG_AFTER, "records-chen", "records_manager"), subject["customer"])
    with pytest.raises(TransitionForbidden) as refused:
        service.approve(at(LONG_AFTER, "records-chen", "compliance_officer"), str(d.id))
    assert refused.value.rule == "disposition.four_eyes"
    with pytest.raises(TransitionForbidden) as refused:
        service.execute(at(LONG_AFTER, "compliance-qian", "compliance_officer"), str(d.id))
    assert refused.value.rule == "disposition.execute_requires_approval"
    assert service.ledger.contact_details(subject["customer"])["name"] == subject["name"]  # nothing destroyed


def test_new_record_after_proposal_blocks_execution(ledger, service, subject):
    d = service.propose(at(LONG_AFTER, "records-chen", "records_manager"), subject["customer"])
    service.approve(at(LONG_AFTER, "compliance-qian", "compliance_officer"), str(d.id))
    ledger.receive_interaction(at(LONG_AFTER, "agent-li", "agent"), channel="web", direction="inbound",
                               customer_id=subject["customer"], content="hello again")
    with pytest.raises(TransitionForbidden) as refused:
        service.execute(at(LONG_AFTER + timedelta(hours=1), "compliance-qian", "compliance_officer"), str(d.id))
    assert "has not reached its retention trigger" in str(refused.value)


# -- destruction -----------------------------------------------------------------------------------
def test_destruction_end_to_end(ledger, env, service, subject, database_url, tmp_path):
    name, phone = subject["name"].encode(), subject["phone"].encode()
    runner = runner_for(ledger)
    runner.catch_up()
    LogKeys.from_settings(Settings.from_environ(env)).init()
    log = transparency_log(ledger, env)
    log.publish_checkpoint(LONG_AFTER)
    assert log.verify().ok
    assert ledger.contact_details(subject["customer"]) == {"name": subject["name"], "phone": subject["phone"]}
    stored = storage_bytes(ledger, database_url)
    assert name not in stored and phone not in stored  # encrypted from the first write
    wrapped = bytes(ledger.subject_keys.sql.rows("SELECT wrapped FROM {keys} WHERE subject = ?",
                                                 (subject["customer"],))[0][0])
    assert wrapped in storage_bytes(ledger, database_url)

    d = dispose(service, subject["customer"])
    certificate = d.certificate
    assert certificate["proposer"] == "records-chen" and certificate["approver"] == "compliance-qian"
    assert certificate["key_fingerprint"].startswith("sha256:") and certificate["tree_size"] == log.size() - 1
    assert {r["record_class"] for r in certificate["records"]} == {"customer_profile", "communication_record"}

    # The key is gone from the files and from a dump; nothing personal was ever there.
    stored = storage_bytes(ledger, database_url)
    assert wrapped not in stored and name not in stored and phone not in stored

    # Reading and replaying work and show the fields as destroyed; facts survive.
    for app in (ledger, build(env)):  # this process, and a fresh one without cached keys
        assert app.contact_details(subject["customer"]) == {"name": None, "phone": None}
        events = list(app.events.get(uuid.UUID(subject["interaction"])))
        assert events[0].personal == {"subject": subject["customer"], "fields": {"content": None}, "destroyed": True}
        assert app.get("interaction", subject["interaction"]).status == "closed"
    with pytest.raises(TransitionForbidden) as refused:
        ledger.act("customer", subject["customer"], "update_contact", at(LONG_AFTER + timedelta(days=1), "a", "agent"),
                   {"contact": {"name": "new"}})
    assert refused.value.rule == "retention.subject_destroyed"

    # Projections: the increments after destruction equal a rebuild from zero.
    runner.catch_up()
    incremental = runner.digests()
    runner.rebuild()
    assert runner.digests() == incremental
    assert service.destroyed()[0]["disposition_id"] == str(d.id)
    assert service.report(LONG_AFTER + timedelta(days=2)) == []  # nothing left to dispose

    # The log still verifies against the checkpoints from before and after, and the customer's
    # auditor export carries the certificate.
    log.publish_checkpoint(LONG_AFTER + timedelta(days=3))
    report = log.verify()
    assert report.ok and report.checkpoints_checked == 2
    bundle = tmp_path / "bundle"
    write_bundle(log, ledger, Scope("customer", subject["customer"]), bundle, LONG_AFTER + timedelta(days=4))
    assert "Disposition.DestructionCertified" in (bundle / "events.jsonl").read_text()


def test_report_is_a_dry_run(ledger, service, subject):
    before = ledger.recorder.max_notification_id()
    rows = service.report(LONG_AFTER)
    assert [(r["subject"], r["disposable"]) for r in rows] == [(subject["customer"], True)]
    assert ledger.recorder.max_notification_id() == before
    assert ledger.contact_details(subject["customer"])["phone"] == subject["phone"]


def test_crash_between_certificate_and_key_destruction_is_completed(ledger, service, subject):
    d = service.propose(at(LONG_AFTER, "records-chen", "records_manager"), subject["customer"])
    service.approve(at(LONG_AFTER, "compliance-qian", "compliance_officer"), str(d.id))
    d = ledger.get("disposition", d.id)
    d.certify_destruction(assessment=service.assess(subject["customer"], LONG_AFTER), key_fingerprint="sha256:x",
                          tree_size=1, policy=ledger.policy_of(d), ctx=at(LONG_AFTER, "compliance-qian",
                                                                           "compliance_officer"))
    ledger._save(d)  # ... and the process dies before destroying the key
    assert ledger.contact_details(subject["customer"])["name"] == subject["name"]
    assert service.complete_pending() == 1
    assert ledger.contact_details(subject["customer"])["name"] is None
    assert service.complete_pending() == 0


# -- where bytes live ------------------------------------------------------------------------------
def storage_bytes(ledger, database_url: str) -> bytes:
    """Everything the database keeps: the SQLite files, or a PostgreSQL dump plus the table files."""
    if database_url.startswith("sqlite"):
        path = database_url[len("sqlite:///"):]
        return b"".join(Path(f).read_bytes() for f in glob.glob(path + "*"))
    url = urlparse(database_url)
    schema = parse_qs(url.query)["schema"][0]
    dsn = database_url.split("?")[0]
    dump = subprocess.run([str(find_bindir() / "pg_dump"), "--dbname", dsn, "--schema", schema, "--data-only"],
                          capture_output=True, check=True).stdout
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        data_dir = conn.execute("SHOW data_directory").fetchone()[0]
        files = [r[0] for r in conn.execute(
            "SELECT pg_relation_filepath(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 't', 'i') AND pg_relation_filepath(c.oid) IS NOT NULL",
            (schema,)).fetchall()]
    table_bytes = b"".join(Path(data_dir, f).read_bytes() for f in files if os.path.exists(Path(data_dir, f)))
    assert table_bytes, "the PostgreSQL table files could not be read"
    return dump + table_bytes


def test_sweep_proposes_once_and_never_executes(ledger, service, subject):
    sweep_ctx = lambda: at(LONG_AFTER, "scheduler", "service")  # noqa: E731
    assert service.sweep(sweep_ctx()) == {"proposed": 1, "already_proposed": 0, "completed": 0}
    assert service.sweep(sweep_ctx()) == {"proposed": 0, "already_proposed": 1, "completed": 0}
    assert ledger.contact_details(subject["customer"])["name"] == subject["name"]  # proposed, not executed
    # The next day a pending proposal still counts: no second one.
    later = at(LONG_AFTER + timedelta(days=1), "scheduler", "service")
    assert service.sweep(later)["proposed"] == 0
