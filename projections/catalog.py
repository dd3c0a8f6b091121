"""The read models caseledger maintains, and one place to build a runner for them."""

from __future__ import annotations

from typing import Any

from projections.audits import AuditLists
from projections.case_people import CasePeople
from projections.cases import ComplaintList, TicketList
from projections.incidents import IncidentList
from projections.work_queues import WorkQueues
from projections.event_counts import EventCounts
from projections.findings import ComplianceFindings
from projections.job_runs import JobRuns
from projections.kpi_counters import KpiCounters
from projections.rectification import FindingRectification
from projections.retention import RetentionRecords
from projections.runtime import Projection, ProjectionRunner
from projections.sla_clocks import SlaClocks
from projections.store import ViewDatabase
from projections.webhook_outbox import WebhookOutbox

PROJECTIONS: tuple[type[Projection], ...] = (TicketList, ComplaintList, KpiCounters, EventCounts, RetentionRecords,
                                              SlaClocks, ComplianceFindings, JobRuns)
PROJECTIONS += (WebhookOutbox,)  # the webhook outbox (services/webhooks.py delivers it)
PROJECTIONS += (FindingRectification,)  # rectification of findings (issue 20, services/rectification.py)
PROJECTIONS += (CasePeople, WorkQueues, IncidentList)  # need-to-know, work queues, incidents (issue 19)
PROJECTIONS += (AuditLists,)  # lists of inspection samples and audit engagements (issue 20, api/audits.py)
NAMES = tuple(p.name for p in PROJECTIONS)


def runner_for(ledger: Any, *, db: ViewDatabase | None = None, batch_size: int = 500) -> ProjectionRunner:
    runner = ProjectionRunner(ledger, [cls(ledger) for cls in PROJECTIONS], db, batch_size=batch_size)
    runner.ensure_tables()
    return runner
