"""A case's related records, for a case export: the records an auditor needs beside the case itself.

Related to a ticket or complaint (the *case*) are, found in one pass over the log:

- what the case's own events name, one hop: its originating interaction (``interaction_id``) or
  feedback (``feedback_id``), a complaint's ticket;
- records whose events name the case: surveys, SLA breaches, findings, holds, dispositions, the
  inspection subsystems' samples and audits, another case opened about it;
- and, transitively, records naming one of those (a finding about an SLA breach of the case);
- holds and dispositions (with their destruction certificates) naming the case's customer, since
  they govern the case's personal data too.

Never related: the customer's record itself and other kinds that are not about a case (access
tokens, disclosures, job runs, review reports, export jobs, subscriptions) — they are exported
with a customer scope or not at all.
"""

from __future__ import annotations

from typing import Any, Iterable
from uuid import UUID

from ledger.kinds import KINDS

#: Kinds that are never a case's related record (see the module doc).
UNRELATED_KINDS = frozenset({"customer", "api_token", "data_access", "job_run", "review_report", "export_job",
                             "webhook_subscription"})
#: Kinds that follow the case's customer, not only the case.
CUSTOMER_WIDE_KINDS = frozenset({"hold", "disposition"})
#: Kinds related only when linked to the case directly (never transitively: a case is not a hub).
CASE_KINDS = frozenset({"ticket", "complaint", "feedback", "interaction"})
_ENVELOPE = frozenset({"originator_id", "originator_version", "timestamp", "meta", "personal", "originator_topic"})
_KIND_OF_CLASS = {cls: kind for kind, cls in KINDS.items()}


def kind_of(event: Any) -> str | None:
    """The ledger kind of the aggregate an event belongs to (its class is the event's outer class)."""
    outer = type(event).__qualname__.split(".")[0]
    for cls, kind in _KIND_OF_CLASS.items():
        if cls.__name__ == outer and cls.__module__ == type(event).__module__:
            return kind
    return None


def uuids_in(value: Any) -> Iterable[str]:
    """Every UUID (as text) in a value: strings, UUIDs, and inside lists and dicts."""
    if isinstance(value, UUID):
        yield str(value)
    elif isinstance(value, str) and len(value) == 36:
        try:
            yield str(UUID(value))
        except ValueError:
            return
    elif isinstance(value, dict):
        for item in value.values():
            yield from uuids_in(item)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from uuids_in(item)


def references(event: Any) -> set[str]:
    """The ids an event's own fields name (not its envelope)."""
    return {ref for name, value in vars(event).items() if name not in _ENVELOPE for ref in uuids_in(value)}


def related_records(ledger: Any, case_id: str) -> dict[str, str]:
    """{aggregate id: kind} of the case's related records (the case itself excluded)."""
    refs: dict[str, set[str]] = {}
    kinds: dict[str, str] = {}
    after = 0
    while page := ledger.log(after=after, limit=1000):
        for _, event in page:
            oid = str(event.originator_id)
            kinds.setdefault(oid, kind_of(event) or "")
            refs.setdefault(oid, set()).update(references(event))
        after = page[-1][0]
    if case_id not in refs:
        return {}
    own = refs[case_id] - {case_id}
    customers = {ref for ref in own if kinds.get(ref) == "customer"}
    related = {oid for oid in own if kinds.get(oid) not in UNRELATED_KINDS and oid in kinds}
    related |= {oid for oid, named in refs.items() if case_id in named and kinds[oid] not in UNRELATED_KINDS}
    related |= {oid for oid, named in refs.items() if kinds[oid] in CUSTOMER_WIDE_KINDS and named & customers}
    frontier = {oid for oid in related if kinds[oid] not in CASE_KINDS}
    while frontier:  # records naming a related record (not a case: cases are only linked directly)
        found = {oid for oid, named in refs.items() if named & frontier and kinds[oid] not in UNRELATED_KINDS
                 and kinds[oid] not in CASE_KINDS and oid not in related and oid != case_id}
        related |= found
        frontier = found
    related.discard(case_id)
    return {oid: kinds[oid] for oid in sorted(related)}
