"""What every caseledger aggregate shares: its governing policy and how events get metadata."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate

from domain.context import Context, personal
from domain.errors import PolicyError, require
from domain.policy import Policy


class Case(Aggregate):
    """Base for aggregates governed by one policy version for their whole life.

    Command methods check rules and then call a private ``@event`` method that only changes
    state, so replaying old events never re-runs today's rules against yesterday's facts.

    Every subclass sets ``policy_ref`` and ``status`` in its created event; ``last_occurred_at``
    is kept by :class:`Case.Event`. (They are not class annotations: eventsourcing would turn
    annotations into fields of the created event.)
    """

    class Event(Aggregate.Event):
        """Every event remembers its business time on the aggregate, to keep time monotonic."""

        def apply(self, aggregate: Any) -> None:
            aggregate.last_occurred_at = self.meta["occurred_at"]  # type: ignore[attr-defined]

    @property
    def subject_id(self) -> str:
        """The data subject (customer) whose personal data this aggregate's events carry."""
        return str(getattr(self, "customer_id", None) or self.id)

    def _meta(self, ctx: Context) -> dict[str, Any]:
        last = datetime.fromisoformat(self.last_occurred_at)
        require(ctx.occurred_at >= last,
                f"business time cannot run backwards: the last event happened at {self.last_occurred_at}",
                rule="time.monotonic")
        return ctx.meta(self.policy_ref)

    def _personal(self, **fields: Any) -> dict[str, Any]:
        return personal(self.subject_id, **fields)

    def _governed_by(self, policy: Policy) -> None:
        if policy.ref != self.policy_ref:
            raise PolicyError(
                f"this {type(self).__name__.lower()} is governed by {self.policy_ref}, not {policy.ref}",
                rule="policy.case_pinned",
            )

    def _require_status(self, allowed: set[str] | frozenset[str], action: str, *, rule: str, clause: str | None = None) -> None:
        require(
            self.status in allowed,
            f"cannot {action} a {type(self).__name__.lower()} that is {self.status}"
            f" (allowed when {', '.join(sorted(allowed))})",
            rule=rule,
            clause=clause,
        )

    def _require_silence_due(self, policy: Policy, ctx: Context, due_at: datetime, waiting: set[str], action: str,
                             awaited: str, *, rule: str, due_rule: str) -> None:
        """rules.customer_silence: the case (governed by ``policy``) waits on the customer (its status is one
        of ``waiting``, else ``rule``) and ``due_at`` has passed (else ``due_rule``); both cite the rule's clause.
        Not an event: the command methods that close a case on the customer's silence check this first."""
        self._governed_by(policy)
        clause = policy.clause("customer_silence")
        self._require_status(waiting, action, rule=rule, clause=clause)
        require(ctx.occurred_at >= due_at, f"the customer has until {due_at.isoformat()} to {awaited}",
                rule=due_rule, clause=clause)
