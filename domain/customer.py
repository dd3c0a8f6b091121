"""Customer: the data subject. Kind, tier and consents are facts; contact details are personal data."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.case import Case
from domain.context import Context, personal
from domain.errors import InvalidValue, require
from domain.policy import Policy

#: Contact details a customer record may hold (data minimisation, 004 §2.2.1: nothing else).
CONTACT_FIELDS = ("name", "phone", "email", "address")


class Customer(Case):
    @event("Registered")
    def __init__(self, id: UUID, kind: str, tier: str, consents: dict[str, bool], policy_ref: str,
                 personal: dict[str, Any], meta: dict[str, Any]):
        self.kind = kind
        self.tier = tier
        self.consents = dict(consents)
        self.policy_ref = policy_ref
        self.status = "active"

    @classmethod
    def register(cls, *, id: UUID, kind: str, tier: str, contact: dict[str, str | None],
                 consents: dict[str, bool], policy: Policy, ctx: Context) -> Customer:
        policy.check("customer_kind", kind)
        policy.check("customer_tier", tier)
        _check_contact(contact)
        return cls(id=id, kind=kind, tier=tier, consents=_check_consents(consents), policy_ref=policy.ref,
                   personal=personal(id, **contact), meta=ctx.meta(policy.ref))

    def change_tier(self, *, tier: str, policy: Policy, ctx: Context) -> None:
        self._governed_by(policy)
        policy.check("customer_tier", tier)
        require(tier != self.tier, f"the customer is already {tier}", rule="customer.tier_unchanged")
        self._tier_changed(self.tier, tier, self._meta(ctx))

    @event("TierChanged")
    def _tier_changed(self, from_tier: str, to_tier: str, meta: dict[str, Any]) -> None:
        self.tier = to_tier

    def update_contact(self, *, contact: dict[str, str | None], policy: Policy, ctx: Context) -> None:
        self._governed_by(policy)
        _check_contact(contact)
        require(bool(contact), "nothing to update", rule="customer.contact_empty")
        self._contact_updated(sorted(contact), self._personal(**contact), self._meta(ctx))

    @event("ContactUpdated")
    def _contact_updated(self, changed_fields: list[str], personal: dict[str, Any], meta: dict[str, Any]) -> None:
        pass  # contact details live only in events (personal part); the aggregate keeps no copy

    def set_consents(self, *, consents: dict[str, bool], policy: Policy, ctx: Context) -> None:
        self._governed_by(policy)
        self._consents_changed(_check_consents(consents), self._meta(ctx))

    @event("ConsentsChanged")
    def _consents_changed(self, consents: dict[str, bool], meta: dict[str, Any]) -> None:
        self.consents.update(consents)


def _check_contact(contact: dict[str, str | None]) -> None:
    unknown = set(contact) - set(CONTACT_FIELDS)
    if unknown:
        raise InvalidValue(f"unknown contact fields: {', '.join(sorted(unknown))}", rule="customer.contact_fields")


def _check_consents(consents: dict[str, bool]) -> dict[str, bool]:
    if not all(isinstance(k, str) and k and isinstance(v, bool) for k, v in consents.items()):
        raise InvalidValue("consents map names to true/false", rule="customer.consents")
    return dict(consents)
