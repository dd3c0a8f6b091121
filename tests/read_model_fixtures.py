"""What the read-model tests (tests/projections) and the KPI tests (tests/kpis) share: business time from a
fixed T0, a projection runner on small batches, ``act``, a read model with a bug and the events counted. Their conftests import these names; pytest puts
this folder (that of the root conftest) on ``sys.path``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from domain.context import Context
from projections.cases import TicketList
from projections.catalog import runner_for
from projections.event_counts import COUNT_TABLE
from projections.runtime import ProjectionRunner

#: The same start of business time as tests/conftest.py's clock: 2025-09-01 09:00 +08:00, a Monday.
T0 = datetime(2025, 9, 1, 9, 0, tzinfo=timezone(timedelta(hours=8)))


def runner_fixture(batch_size: int):
    """A ``runner`` fixture: a projection runner on the ledger's database, ``batch_size`` events a batch."""

    @pytest.fixture
    def runner(ledger) -> Iterator[ProjectionRunner]:
        r = runner_for(ledger, batch_size=batch_size)
        yield r
        r.close()

    return runner


@pytest.fixture
def at():
    """``at(minutes, actor, role, reason)``: a context ``minutes`` after T0, so times are hand-computable."""

    def make(minutes: float, actor: str = "agent-li", role: str = "agent", reason: str | None = None) -> Context:
        return Context(actor_id=actor, actor_role=role, occurred_at=T0 + timedelta(minutes=minutes),
                       request_id=uuid.uuid4().hex, reason=reason)

    return make


def act(ledger, kind, case_id, action, ctx, **args):
    return ledger.act(kind, case_id, action, ctx, args)


class BrokenTicketList(TicketList):
    """Fails on classification, as a read model with a bug would."""

    name = "broken_ticket_list"

    def on_Ticket_Classified(self, e, position, rows):
        raise ValueError("bug in handler")


def event_total(runner: ProjectionRunner) -> int:
    """The events the event_counts read model of ``runner`` has counted."""
    with runner.db.reading() as cur:
        return int(cur.execute(f"SELECT COALESCE(SUM(events), 0) FROM {COUNT_TABLE.name}").fetchone()[0])
