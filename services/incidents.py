"""Reporting an incident (service fault, security incident, customer-data leak).

Incidents belong to no customer and no existing case, so :class:`ledger.application.CaseLedger`
has no creation method for them: this use case builds one under the policy in force and saves it
with ``ledger.record``. Later steps (level, timeline, recovery, closure) are ordinary actions
(``ledger.act("incident", id, …)``, listed in ``ledger.kinds.ACTIONS``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import uuid4

from domain.context import Context
from domain.incident import Incident


def report_incident(ledger: Any, ctx: Context, *, incident_kind: str, level: str,
                    started_at: datetime | None = None, affected_customers: int = 0,
                    summary: str | None = None) -> Incident:
    incident = Incident.report(id=uuid4(), incident_kind=incident_kind, level=level,
                               policy=ledger.policy_for_new_case(ctx), ctx=ctx, started_at=started_at,
                               affected_customers=affected_customers, summary=summary)
    ledger.record(incident)
    return incident
