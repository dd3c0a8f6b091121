"""Interaction: one contact with a customer on any channel.

Every contact received must be registered and routed (intake completeness, POLICY_FACTS
"received = registered = routed"). The agent who registers it is its first-contact agent
(首问负责制) for good.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.case import Case
from domain.context import Context, personal
from domain.errors import require
from domain.policy import Policy


class InteractionStatus:
    RECEIVED = "received"
    REGISTERED = "registered"
    ROUTED = "routed"
    CLOSED = "closed"
    ALL = frozenset({RECEIVED, REGISTERED, ROUTED, CLOSED})


S = InteractionStatus


class Interaction(Case):
    @event("Received")
    def __init__(self, id: UUID, channel: str, direction: str, customer_id: str | None, external_ref: str | None,
                 policy_ref: str, personal: dict[str, Any], meta: dict[str, Any]):
        self.channel = channel
        self.direction = direction
        self.customer_id = customer_id
        self.external_ref = external_ref
        self.policy_ref = policy_ref
        self.status = S.RECEIVED
        self.first_contact_agent: str | None = None
        self.queue: str | None = None
        self.ticket_ids: list[str] = []
        self.resolved_on_first_contact: bool | None = None

    @classmethod
    def receive(cls, *, id: UUID, channel: str, direction: str, policy: Policy, ctx: Context,
                customer_id: str | None = None, content: str | None = None,
                external_ref: str | None = None) -> Interaction:
        policy.check("channel", channel)
        policy.check("direction", direction)
        customer = str(customer_id) if customer_id else None
        ref = policy.ref  # computed on each use: once here (this runs for every line of an import)
        return cls(id=id, channel=channel, direction=direction, customer_id=customer, external_ref=external_ref,
                   policy_ref=ref, personal=personal(customer or str(id), content=content), meta=ctx.meta(ref))

    def register(self, *, agent_id: str, policy: Policy, ctx: Context) -> None:
        self._governed_by(policy)
        self._require_status({S.RECEIVED}, "register", rule="interaction.register_once",
                             clause=policy.clause("first_contact_responsibility"))
        require(bool(agent_id), "registration names the first-contact agent", rule="interaction.first_contact_agent",
                clause=policy.clause("first_contact_responsibility"))
        self._registered(agent_id, self._meta(ctx))

    @event("Registered")
    def _registered(self, agent_id: str, meta: dict[str, Any]) -> None:
        self.first_contact_agent = agent_id
        self.status = S.REGISTERED

    def route(self, *, queue: str, policy: Policy, ctx: Context) -> None:
        self._governed_by(policy)
        self._require_status({S.REGISTERED}, "route", rule="interaction.route_requires_registration")
        require(bool(queue), "routing needs a queue", rule="interaction.queue")
        self._routed(queue, self._meta(ctx))

    @event("Routed")
    def _routed(self, queue: str, meta: dict[str, Any]) -> None:
        self.queue = queue
        self.status = S.ROUTED

    def open_ticket(self, *, ticket_id: str, policy: Policy, ctx: Context) -> None:
        """Note that a ticket was opened for this contact (saved together with the ticket)."""
        self._governed_by(policy)
        self._require_status({S.REGISTERED, S.ROUTED}, "open a ticket from", rule="interaction.ticket_requires_registration")
        self._ticket_opened(str(ticket_id), self._meta(ctx))

    @event("TicketOpened")
    def _ticket_opened(self, ticket_id: str, meta: dict[str, Any]) -> None:
        self.ticket_ids.append(ticket_id)

    def close(self, *, resolved_on_first_contact: bool, policy: Policy, ctx: Context) -> None:
        self._governed_by(policy)
        self._require_status({S.ROUTED}, "close", rule="interaction.close_requires_routing")
        require(not (resolved_on_first_contact and self.ticket_ids),
                "a contact that needed a ticket was not resolved on first contact",
                rule="interaction.first_contact_resolution")
        self._closed(resolved_on_first_contact, self._meta(ctx))

    @event("Closed")
    def _closed(self, resolved_on_first_contact: bool, meta: dict[str, Any]) -> None:
        self.resolved_on_first_contact = resolved_on_first_contact
        self.status = S.CLOSED
