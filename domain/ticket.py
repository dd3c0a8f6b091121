"""Ticket: a work order / service request (工单) from receipt to archive.

Lifecycle (003 ch.2, 002 §3.2.3): received → classified → assigned → in progress →
[review by a second person for complex or high-risk tickets] → resolved → result fed back →
customer accepts (or rejects → rework) → closed → archived. A closed ticket may be reopened until
it is archived. The first-contact owner (首问负责制) is fixed at receipt and never changes;
handing work to other people is a separate, recorded assignment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.case import Case
from domain.context import Context, person, personal
from domain.errors import require
from domain.policy import Policy


class TicketStatus:
    RECEIVED = "received"
    CLASSIFIED = "classified"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    AWAITING_REVIEW = "awaiting_review"
    RESOLVED = "resolved"
    FED_BACK = "fed_back"
    ACCEPTED = "accepted"
    CLOSED = "closed"
    ARCHIVED = "archived"

    OPEN = frozenset({RECEIVED, CLASSIFIED, ASSIGNED, IN_PROGRESS, AWAITING_REVIEW, RESOLVED, FED_BACK, ACCEPTED})
    ALL = OPEN | {CLOSED, ARCHIVED}


S = TicketStatus


class Ticket(Case):
    @event("Received")
    def __init__(self, id: UUID, customer_id: str, channel: str, interaction_id: str | None,
                 first_contact_owner: str, policy_ref: str, personal: dict[str, Any], meta: dict[str, Any]):
        self.customer_id = customer_id
        self.channel = channel
        self.interaction_id = interaction_id
        self.first_contact_owner = first_contact_owner
        self.policy_ref = policy_ref
        self.status = S.RECEIVED
        self.priority: str | None = None
        self.complexity: str | None = None
        self.high_risk = False
        self.review_required = False
        self.handler: str | None = None
        self.team: str | None = None
        self.first_responded = False
        self.resolved_by: str | None = None
        self.reviewed_by: str | None = None
        self.clock_paused = False
        self.rework_count = 0
        self.reopen_count = 0
        self.archived_by: str | None = None
        self.service_type: str | None = None
        self.progress_updates = 0
        self.fed_back_at: str | None = None
        self.closure: str | None = None
        self.closed_at: str | None = None

    @classmethod
    def receive(cls, *, id: UUID, customer_id: str, channel: str, first_contact_owner: str,
                policy: Policy, ctx: Context, summary: str | None = None,
                interaction_id: str | None = None) -> Ticket:
        policy.check("channel", channel)
        require(bool(first_contact_owner), "a ticket needs its first-contact owner",
                rule="ticket.first_contact_owner", clause=policy.clause("first_contact_responsibility"))
        return cls(id=id, customer_id=str(customer_id), channel=channel, interaction_id=interaction_id,
                   first_contact_owner=first_contact_owner, policy_ref=policy.ref,
                   personal=personal(customer_id, summary=summary),
                   meta=ctx.meta(policy.ref))

    # -- classification and assignment ------------------------------------------------------
    def classify(self, *, priority: str, complexity: str, high_risk: bool, policy: Policy, ctx: Context,
                 service_type: str | None = None) -> None:
        """Priority, complexity, risk and — under policies with that vocabulary — the service type
        (consultation, technical, …) that limits, KPIs and lists select by."""
        self._governed_by(policy)
        self._require_status({S.RECEIVED, S.CLASSIFIED, S.ASSIGNED, S.IN_PROGRESS}, "classify",
                             rule="ticket.classify")
        policy.check("priority", priority)
        policy.check("complexity", complexity)
        if service_type is not None:
            policy.check("service_type", service_type)
        review = policy.rule("second_review")
        needs_review = complexity in review["complexities"] or (bool(review.get("high_risk")) and high_risk)
        self._classified(priority, complexity, high_risk, needs_review, self._meta(ctx), service_type)

    @event("Classified")
    def _classified(self, priority: str, complexity: str, high_risk: bool, review_required: bool,
                    meta: dict[str, Any], service_type: str | None = None) -> None:
        # service_type has a default: Classified events stored before it existed replay without it.
        self.priority, self.complexity, self.high_risk = priority, complexity, high_risk
        self.review_required = review_required
        self.service_type = service_type
        if self.status == S.RECEIVED:
            self.status = S.CLASSIFIED

    def assign(self, *, handler: str, team: str | None, policy: Policy, ctx: Context) -> None:
        """Assign or hand over the work. The first-contact owner stays accountable regardless."""
        self._governed_by(policy)
        self._require_status({S.CLASSIFIED, S.ASSIGNED, S.IN_PROGRESS}, "assign", rule="ticket.assign_requires_classification",
                             clause=policy.clock("ticket.acceptance").source)
        require(bool(handler), "an assignment needs a handler", rule="ticket.assign_handler")
        self._assigned(handler, team, self.handler, self._meta(ctx))

    @event("Assigned")
    def _assigned(self, handler: str, team: str | None, previous_handler: str | None, meta: dict[str, Any]) -> None:
        self.handler, self.team = handler, team
        if self.status == S.CLASSIFIED:
            self.status = S.ASSIGNED

    def respond_first(self, *, policy: Policy, ctx: Context, message: str | None = None) -> None:
        """Record the first response to the customer (the first-response clock stops here)."""
        self._governed_by(policy)
        require(not self.first_responded, "the first response is already recorded", rule="ticket.first_response_once")
        self._require_status({S.RECEIVED, S.CLASSIFIED, S.ASSIGNED, S.IN_PROGRESS}, "record a first response on",
                             rule="ticket.first_response")
        self._first_responded(self._personal(message=message), self._meta(ctx))

    @event("FirstResponded")
    def _first_responded(self, personal: dict[str, Any], meta: dict[str, Any]) -> None:
        self.first_responded = True

    def update_progress(self, *, channel: str, policy: Policy, ctx: Context, message: str | None = None) -> None:
        """A progress update to the customer (002 §3.2 item 2: tracking starts within 24 h of the work
        order, and the status is updated regularly while it is handled). The first one starts tracking."""
        self._governed_by(policy)
        policy.check("channel", channel)
        self._require_status({S.RECEIVED, S.CLASSIFIED, S.ASSIGNED, S.IN_PROGRESS, S.AWAITING_REVIEW},
                             "record a progress update on", rule="ticket.progress_while_open")
        self._progress_updated(channel, self._personal(message=message), self._meta(ctx))

    @event("ProgressUpdated")
    def _progress_updated(self, channel: str, personal: dict[str, Any], meta: dict[str, Any]) -> None:
        self.progress_updates = getattr(self, "progress_updates", 0) + 1

    # -- handling ---------------------------------------------------------------------------
    def start_work(self, *, policy: Policy, ctx: Context) -> None:
        self._governed_by(policy)
        self._require_status({S.ASSIGNED}, "start work on", rule="ticket.start_requires_assignment")
        self._work_started(self._meta(ctx))

    @event("WorkStarted")
    def _work_started(self, meta: dict[str, Any]) -> None:
        self.status = S.IN_PROGRESS

    def pause_clock(self, *, policy: Policy, ctx: Context) -> None:
        """Waiting for the customer: pausable clocks stop counting until resumed."""
        self._governed_by(policy)
        self._require_status({S.IN_PROGRESS}, "pause the clock of", rule="ticket.pause")
        require(not self.clock_paused, "the clock is already paused", rule="ticket.pause_once")
        require(bool(ctx.reason), "pausing a clock needs a reason", rule="ticket.pause_reason")
        self._clock_paused(self._meta(ctx))

    @event("ClockPaused")
    def _clock_paused(self, meta: dict[str, Any]) -> None:
        self.clock_paused = True

    def resume_clock(self, *, policy: Policy, ctx: Context) -> None:
        self._governed_by(policy)
        require(self.clock_paused, "the clock is not paused", rule="ticket.resume")
        self._clock_resumed(self._meta(ctx))

    @event("ClockResumed")
    def _clock_resumed(self, meta: dict[str, Any]) -> None:
        self.clock_paused = False

    def resolve(self, *, policy: Policy, ctx: Context, resolution: str | None = None) -> None:
        """Propose a resolution; complex or high-risk tickets then wait for a second reviewer."""
        self._governed_by(policy)
        self._require_status({S.IN_PROGRESS}, "resolve", rule="ticket.resolve_requires_work")
        require(not self.clock_paused, "resume the clock before resolving", rule="ticket.resolve_paused")
        self._resolved(self.review_required, self._personal(resolution=resolution), self._meta(ctx))

    @event("Resolved")
    def _resolved(self, review_required: bool, personal: dict[str, Any], meta: dict[str, Any]) -> None:
        self.resolved_by = person(meta)
        self.reviewed_by = None
        self.status = S.AWAITING_REVIEW if review_required else S.RESOLVED

    def review(self, *, approved: bool, policy: Policy, ctx: Context, note: str | None = None) -> None:
        """Second-person review (003 §2.2.2): the reviewer must be someone else than the handler."""
        self._governed_by(policy)
        clause = policy.clause("second_review")
        self._require_status({S.AWAITING_REVIEW}, "review", rule="ticket.review_not_pending", clause=clause)
        require(ctx.person not in {self.handler, self.resolved_by},
                "the reviewer must be a second person, not the handler who resolved it",
                rule="ticket.second_person_review", clause=clause)
        self._reviewed(approved, self._personal(note=note), self._meta(ctx))

    @event("Reviewed")
    def _reviewed(self, approved: bool, personal: dict[str, Any], meta: dict[str, Any]) -> None:
        self.reviewed_by = person(meta)
        self.status = S.RESOLVED if approved else S.IN_PROGRESS

    def feed_back_result(self, *, channel: str, policy: Policy, ctx: Context) -> None:
        self._governed_by(policy)
        policy.check("channel", channel)
        self._require_status({S.RESOLVED}, "feed back the result of", rule="ticket.feedback_requires_resolution",
                             clause=policy.clock("ticket.result_feedback").source)
        self._result_fed_back(channel, self._meta(ctx))

    @event("ResultFedBack")
    def _result_fed_back(self, channel: str, meta: dict[str, Any]) -> None:
        self.status = S.FED_BACK
        self.fed_back_at = meta["occurred_at"]

    def record_acceptance(self, *, accepted: bool, policy: Policy, ctx: Context, comment: str | None = None) -> None:
        """The customer confirms the result, or rejects it and the ticket goes back to rework."""
        self._governed_by(policy)
        self._require_status({S.FED_BACK}, "record the customer's acceptance of", rule="ticket.acceptance_requires_feedback",
                             clause=policy.clause("acceptance_required_to_close"))
        self._acceptance_recorded(accepted, self._personal(comment=comment), self._meta(ctx))

    @event("AcceptanceRecorded")
    def _acceptance_recorded(self, accepted: bool, personal: dict[str, Any], meta: dict[str, Any]) -> None:
        if accepted:
            self.status = S.ACCEPTED
        else:
            self.status = S.IN_PROGRESS
            self.rework_count += 1

    # -- closure ---------------------------------------------------------------------------
    def close(self, *, policy: Policy, ctx: Context) -> None:
        self._governed_by(policy)
        require(self.status == S.ACCEPTED, f"close requires customer acceptance; the ticket is {self.status}",
                rule="ticket.close_requires_acceptance", clause=policy.clause("acceptance_required_to_close"))
        self._closed(self._meta(ctx))

    @event("Closed")
    def _closed(self, meta: dict[str, Any]) -> None:
        self.status = S.CLOSED
        self.closure = "accepted"
        self.closed_at = meta["occurred_at"]

    def close_unconfirmed(self, *, due_at: datetime, policy: Policy, ctx: Context) -> None:
        """The customer never answered the result fed back: close without their confirmation once
        ``due_at`` (:func:`domain.stalled.confirmation_due`) has passed (rules.customer_silence).
        The ticket is never recorded as accepted; the closure says it was not confirmed."""
        self._require_silence_due(policy, ctx, due_at, {S.FED_BACK}, "close as unconfirmed", "confirm",
                                  rule="ticket.silence_requires_feedback", due_rule="ticket.silence_not_due")
        self._closed_unconfirmed(due_at.isoformat(), self._meta(ctx))

    @event("ClosedUnconfirmed")
    def _closed_unconfirmed(self, due_at: str, meta: dict[str, Any]) -> None:
        self.status = S.CLOSED
        self.closure = "unconfirmed"
        self.closed_at = meta["occurred_at"]

    def reopen(self, *, policy: Policy, ctx: Context) -> None:
        self._governed_by(policy)
        require(self.status != S.ARCHIVED, "an archived ticket cannot be reopened; open a new ticket",
                rule="ticket.reopen_archived", clause=policy.record_class("service_archive").source)
        self._require_status({S.CLOSED}, "reopen", rule="ticket.reopen_requires_closed")
        require(bool(ctx.reason), "reopening needs a reason", rule="ticket.reopen_reason")
        self._reopened(self._meta(ctx))

    @event("Reopened")
    def _reopened(self, meta: dict[str, Any]) -> None:
        self.status = S.IN_PROGRESS
        self.closure = self.closed_at = None
        self.reopen_count += 1

    def archive(self, *, policy: Policy, ctx: Context) -> None:
        """Archive with archive time and archivist (002 §8.1); archived records are final."""
        self._governed_by(policy)
        self._require_status({S.CLOSED}, "archive", rule="ticket.archive_requires_closed",
                             clause=policy.record_class("service_archive").source)
        self._archived(self._meta(ctx))

    @event("Archived")
    def _archived(self, meta: dict[str, Any]) -> None:
        self.status = S.ARCHIVED
        self.archived_by = person(meta)

    def can_be_surveyed(self) -> bool:
        """A satisfaction survey makes sense once the customer has seen the result."""
        return self.status in {S.FED_BACK, S.ACCEPTED, S.CLOSED, S.ARCHIVED}
