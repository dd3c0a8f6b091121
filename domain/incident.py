"""Incident (服务突发事件): a service fault, a security incident or a customer-data leak.

Lifecycle (004 §4.3 服务应急预案, 000 §7.1): reported (kind, level L1–L4, when the impact began)
→ timeline entries while it is handled (detection, containment, notification, …) → recovered
(service restored) → closed (handled, with follow-up). The targets that judge it are policy data
(``targets.incident_recovery_hours``, ``targets.security_incident_hours``,
``targets.data_leak_handling_rate``); read models measure them from these events.

The three kinds are behaviour, not a vocabulary: each decides which target measures it and what
closing needs, so they live here like statuses do. Levels come from ``vocabularies.incident_level``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.case import Case
from domain.context import Context, personal
from domain.errors import InvalidValue, require
from domain.policy import Policy


class IncidentKind:
    SERVICE_FAULT = "service_fault"  # 服务中断: system fault, network outage (004 §4.3 item 1)
    SECURITY = "security_incident"  # 系统入侵 and other security events (004 §4.3 item 4)
    DATA_LEAK = "data_leak"  # 客户数据泄露 (004 §4.3 item 4): must be handled, 100 %
    ALL = frozenset({SERVICE_FAULT, SECURITY, DATA_LEAK})
    #: Kinds measured by the security handling-time target (report → closed).
    SECURITY_KINDS = frozenset({SECURITY, DATA_LEAK})


class IncidentStatus:
    REPORTED = "reported"
    RECOVERED = "recovered"
    CLOSED = "closed"
    OPEN = frozenset({REPORTED, RECOVERED})


K, S = IncidentKind, IncidentStatus


class Incident(Case):
    @event("Reported")
    def __init__(self, id: UUID, incident_kind: str, level: str, started_at: str, affected_customers: int,
                 policy_ref: str, personal: dict[str, Any], meta: dict[str, Any]):
        self.incident_kind = incident_kind
        self.level = level
        self.started_at = started_at
        self.affected_customers = affected_customers
        self.policy_ref = policy_ref
        self.status = S.REPORTED
        self.recovered_at: str | None = None
        self.timeline_entries = 0

    @classmethod
    def report(cls, *, id: UUID, incident_kind: str, level: str, policy: Policy, ctx: Context,
               started_at: datetime | None = None, affected_customers: int = 0,
               summary: str | None = None) -> Incident:
        """``started_at``: when the impact began (default: now, the report); it counts as downtime."""
        if incident_kind not in K.ALL:
            raise InvalidValue(f"incident kind must be one of {', '.join(sorted(K.ALL))}", rule="incident.kind",
                               clause=policy.target("incident_recovery_hours").source)
        policy.check("incident_level", level)
        began = started_at or ctx.occurred_at
        if began.tzinfo is None or began > ctx.occurred_at:
            raise InvalidValue("started_at must carry a time zone and not be after the report", rule="incident.started_at")
        if isinstance(affected_customers, bool) or not isinstance(affected_customers, int) or affected_customers < 0:
            raise InvalidValue("affected_customers must be a whole number ≥ 0", rule="incident.affected_customers")
        # The summary is free text and may name people: kept as the incident's own personal part.
        return cls(id=id, incident_kind=incident_kind, level=level, started_at=began.isoformat(),
                   affected_customers=affected_customers, policy_ref=policy.ref,
                   personal=personal(str(id), summary=summary),
                   meta=ctx.meta(policy.ref))

    def change_level(self, *, level: str, policy: Policy, ctx: Context) -> None:
        self._governed_by(policy)
        self._require_status(S.OPEN, "change the level of", rule="incident.level_while_open")
        policy.check("incident_level", level)
        require(level != self.level, f"the incident is already {level}", rule="incident.level_unchanged")
        require(bool(ctx.reason), "changing an incident's level needs a reason", rule="incident.level_reason")
        self._level_changed(self.level, level, self._meta(ctx))

    @event("LevelChanged")
    def _level_changed(self, from_level: str, to_level: str, meta: dict[str, Any]) -> None:
        self.level = to_level

    def note(self, *, step: str, policy: Policy, ctx: Context, details: str | None = None) -> None:
        """A timeline entry: detection, containment, customer notification, rectification…"""
        self._governed_by(policy)
        self._require_status(S.OPEN, "add to the timeline of", rule="incident.timeline_while_open")
        require(bool(step), "a timeline entry names its step", rule="incident.timeline_step")
        self._noted(step, self._personal(details=details), self._meta(ctx))

    @event("Noted")
    def _noted(self, step: str, personal: dict[str, Any], meta: dict[str, Any]) -> None:
        self.timeline_entries += 1

    def recover(self, *, policy: Policy, ctx: Context) -> None:
        """Service restored: the recovery time (004 §4.3 item 1) and the downtime end here."""
        self._governed_by(policy)
        self._require_status({S.REPORTED}, "recover", rule="incident.recover_once",
                             clause=policy.target("incident_recovery_hours").source)
        self._recovered(self._meta(ctx))

    @event("Recovered")
    def _recovered(self, meta: dict[str, Any]) -> None:
        self.status = S.RECOVERED
        self.recovered_at = meta["occurred_at"]

    def close(self, *, policy: Policy, ctx: Context, resolution: str | None = None) -> None:
        """Handled. A service fault closes only after recovery (its service is back); a security
        incident or a data leak is handled when it closes (handling time, handling rate)."""
        self._governed_by(policy)
        if self.incident_kind == K.SERVICE_FAULT:
            self._require_status({S.RECOVERED}, "close", rule="incident.close_requires_recovery",
                                 clause=policy.target("incident_recovery_hours").source)
        else:
            self._require_status(S.OPEN, "close", rule="incident.close_once",
                                 clause=policy.target("security_incident_hours").source)
        self._closed(self._personal(resolution=resolution), self._meta(ctx))

    @event("Closed")
    def _closed(self, personal: dict[str, Any], meta: dict[str, Any]) -> None:
        self.status = S.CLOSED
