"""Hostile events stored below the API, for the tests of read models that must survive them.

Not a test module: ``test_hostile_events.py`` and ``test_stalled_serving.py`` import it (the test
folders are not packages; pytest puts this folder on ``sys.path``).
"""

from __future__ import annotations

import json
import uuid

from eventsourcing.persistence import StoredEvent

from projections.event_counts import COUNT_TABLE
from projections.retention import HOLD_TABLE
from services.retention import Retention

RECORDS = ("records-chen", "records_manager")


# -- storing hostile events below the API ---------------------------------------------------------
def store_raw(ledger, topic: str, fields: dict | bytes, *, originator_id: uuid.UUID | None = None,
              version: int = 1) -> int:
    """Store one event through the recorder (its transparency-log leaf included), as a buggy
    writer, an old version or a hand-made import could; returns its log position. ``fields``:
    the event's attributes (JSON with ASCII escapes, so lone surrogates can be spelt), or the
    stored state itself."""
    if isinstance(fields, bytes):
        state = fields
    else:
        stamp = {"_type_": "datetime_iso", "_data_": "2025-09-01T01:00:00+00:00"}
        state = json.dumps({"timestamp": stamp, **fields}, ensure_ascii=True).encode()
    ledger.recorder.insert_events([StoredEvent(originator_id or uuid.uuid4(), version, topic, state)])
    return ledger.recorder.max_notification_id()


def meta(actor: str = "records-chen", role: str = "records_manager") -> dict:
    return {"actor_id": actor, "actor_role": role, "request_id": uuid.uuid4().hex,
            "occurred_at": "2025-09-01T10:00:00+08:00", "policy": "sop-2025@1", "reason": "test"}


def hold_fields(subject: str, **overrides) -> dict:
    return {"originator_topic": "domain.holds:LegalHold", "target_kind": "customer", "target_id": subject,
            "subject": subject, "authority": "court order 17", "reason": "litigation", "policy_ref": "sop-2025@1",
            "meta": meta(), **overrides}


def make_base(ledger, at) -> dict[str, str]:
    """A customer, a classified ticket and a classified complaint."""
    customer = str(ledger.register_customer(at(0), kind="individual", tier="vip", contact={"name": "张三"}).id)
    ticket = str(ledger.open_ticket(at(1), customer_id=customer, channel="phone").id)
    ledger.act("ticket", ticket, "classify", at(2, "lead-wang", "team_lead"),
               {"priority": "normal", "complexity": "general", "high_risk": False})
    complaint = str(ledger.accept_complaint(at(3, "cm-zhou", "complaint_manager"), customer_id=customer,
                                            channel="phone", description="态度差").id)
    ledger.act("complaint", complaint, "classify", at(4, "cm-zhou", "complaint_manager"),
               {"complaint_type": "technical", "level": 1})
    return {"customer": customer, "ticket": ticket, "complaint": complaint}


def place_hold(ledger, at, customer: str, *, authority: str, reason: str) -> str:
    """A hold through the domain, as the API's handler does, minus the API's validation."""
    service = Retention(ledger)
    try:
        return str(service.place_hold(at(10, *RECORDS, reason=reason), target_kind="customer", target_id=customer,
                                      authority=authority).id)
    finally:
        service.close()


def hold_row(runner, hold_id: str) -> dict:
    with runner.db.reading() as cur:
        values = cur.execute(f"SELECT {', '.join(HOLD_TABLE.column_names)} FROM {HOLD_TABLE.name} WHERE hold_id = ?",
                             (hold_id,)).fetchone()
    return dict(zip(HOLD_TABLE.column_names, values))


def counted(runner, topic: str) -> int:
    with runner.db.reading() as cur:
        row = cur.execute(f"SELECT events FROM {COUNT_TABLE.name} WHERE topic = ?", (topic,)).fetchone()
    return 0 if row is None else int(row[0])


def head(ledger) -> int:
    return ledger.recorder.max_notification_id()


def unknown_topic(ledger, base) -> int:
    return store_raw(ledger, "domain.teleport:Ticket.Teleported", {"to": "mars", "meta": meta()})


def missing_fields(ledger, base) -> int:
    # A classification without priority or complexity: the ticket list cannot file it.
    version = ledger.get("ticket", base["ticket"]).version + 1
    return store_raw(ledger, "domain.ticket:Ticket.Classified", {"high_risk": False, "meta": meta()},
                     originator_id=uuid.UUID(base["ticket"]), version=version)


def number_out_of_range(ledger, base) -> int:
    version = ledger.get("complaint", base["complaint"]).version + 1
    return store_raw(ledger, "domain.complaint:Complaint.Classified",
                     {"complaint_type": "technical", "level": 10 ** 30, "meta": meta()},
                     originator_id=uuid.UUID(base["complaint"]), version=version)


def key_too_long(ledger, base) -> int:
    # A hold whose subject (an indexed column) is 100,000 characters: no index entry can hold it.
    return store_raw(ledger, "domain.holds:LegalHold.Placed", hold_fields("s" * 100_000))


def not_json(ledger, base) -> int:
    version = ledger.get("ticket", base["ticket"]).version + 1
    return store_raw(ledger, "domain.ticket:Ticket.Classified", b'{"priority": "urgent", \x00 oops',
                     originator_id=uuid.UUID(base["ticket"]), version=version)
