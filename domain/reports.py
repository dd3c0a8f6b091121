"""Periodic review reports (定期检查报告): one record per review kind and period, issued once.

The supervision cycle of the source documents (000 §6.1–6.2, 004 §6.1) inspects on a schedule and
reports. Each review kind is a policy rule ``review.<kind>`` (its period — ``month``, ``quarter``
or ``year`` — and the clause that asks for it). A report is written to a file, signed with the
log's key, and *issued* as this event, which records the period, the policy version, the file's
SHA-256 and the signature that covers it — so a file edited later no longer matches its event.

A report's id is derived from its kind and period (:func:`report_id`): a second run for the same
period — a misfire, a rerun, a second scheduler — conflicts on save and is "already done".
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import event

from domain.case import Case
from domain.context import Context
from domain.errors import InvalidValue, PolicyError, require
from domain.policy import Policy

REPORT_NAMESPACE = UUID("5b0e4c52-8f61-4d8e-b1a5-2d6f1c7e9a30")
RULE_PREFIX = "review."
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PERIOD_FORMS = {"month": re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])"), "quarter": re.compile(r"([0-9]{4})-Q([1-4])"),
                 "year": re.compile(r"([0-9]{4})")}
_EXAMPLES = {"month": "2026-11", "quarter": "2026-Q4", "year": "2026"}


@dataclass(frozen=True)
class Period:
    """A calendar period of business days, ``first``..``last`` inclusive, named like ``2026-11``."""

    unit: str  # month | quarter | year
    name: str
    first: date
    last: date

    @classmethod
    def parse(cls, unit: str, text: str) -> Period:
        form = _PERIOD_FORMS.get(unit)
        if form is None:
            raise InvalidValue(f"a review period is a month, quarter or year, not {unit!r}", rule="review.period")
        match = form.fullmatch(str(text).strip())
        if match is None:
            raise InvalidValue(f"a {unit} is written like {_EXAMPLES[unit]}, not {text!r}", rule="review.period")
        year = int(match.group(1))
        if unit == "year":
            return cls(unit, f"{year}", date(year, 1, 1), date(year, 12, 31))
        if unit == "quarter":
            quarter = int(match.group(2))
            first_month = 3 * quarter - 2
            last_month = first_month + 2
            return cls(unit, f"{year}-Q{quarter}", date(year, first_month, 1),
                       date(year, last_month, monthrange(year, last_month)[1]))
        month = int(match.group(2))
        return cls(unit, f"{year}-{month:02d}", date(year, month, 1), date(year, month, monthrange(year, month)[1]))

    @classmethod
    def last_complete(cls, unit: str, today: date) -> Period:
        """The latest period of ``unit`` that ended before ``today`` (what a review run on ``today`` covers)."""
        if unit == "year":
            return cls.parse(unit, str(today.year - 1))
        if unit == "quarter":
            quarter = (today.month - 1) // 3  # the current quarter's index, 0-based: the previous is that
            year = today.year if quarter else today.year - 1
            return cls.parse(unit, f"{year}-Q{quarter or 4}")
        month = today.month - 1 or 12
        return cls.parse(unit, f"{today.year if today.month > 1 else today.year - 1}-{month:02d}")


def review_rule(policy: Policy, kind: str) -> dict[str, Any]:
    """The policy rule of a review kind: ``period`` and ``source`` (the clause that asks for it)."""
    try:
        rule = dict(policy.rule(RULE_PREFIX + kind))
    except PolicyError:
        known = ", ".join(review_kinds(policy)) or "none"
        raise InvalidValue(f"no review kind {kind!r} in policy {policy.ref}; kinds: {known}",
                           rule="review.kind") from None
    return rule


def review_kinds(policy: Policy) -> list[str]:
    return sorted(key[len(RULE_PREFIX):] for key in policy.rules if key.startswith(RULE_PREFIX))


def report_id(kind: str, period: str) -> UUID:
    """The one id a report of this kind and period can have."""
    return uuid5(REPORT_NAMESPACE, f"review-report:{kind}:{period}")


class ReviewReport(Case):
    @event("Issued")
    def __init__(self, id: UUID, kind: str, period: str, period_first: str, period_last: str, policy_ref: str,
                 clause: str, file_name: str, sha256: str, signed_by: str, signature_sha256: str,
                 meta: dict[str, Any]):
        self.kind = kind
        self.period = period
        self.period_first = period_first
        self.period_last = period_last
        self.policy_ref = policy_ref
        self.clause = clause
        self.file_name = file_name
        self.sha256 = sha256
        self.signed_by = signed_by
        self.signature_sha256 = signature_sha256
        self.status = "issued"

    @classmethod
    def issue(cls, *, kind: str, period: Period, policy: Policy, file_name: str, sha256: str, signed_by: str,
              signature_sha256: str, ctx: Context) -> ReviewReport:
        """Issue the report of ``kind`` for ``period``; the file and its signature note are already written."""
        rule = review_rule(policy, kind)
        require(rule.get("period") == period.unit, f"a {kind} covers a {rule.get('period')}, not a {period.unit}",
                rule="review.period", clause=str(rule.get("source", "")))
        for name, digest in (("sha256", sha256), ("signature_sha256", signature_sha256)):
            if not _SHA256.fullmatch(digest or ""):
                raise InvalidValue(f"{name} is a SHA-256 in lowercase hex", rule="review.hash")
        require(bool(file_name) and bool(signed_by), "a report names its file and the key that signed it",
                rule="review.file")
        return cls(id=report_id(kind, period.name), kind=kind, period=period.name,
                   period_first=period.first.isoformat(), period_last=period.last.isoformat(), policy_ref=policy.ref,
                   clause=str(rule.get("source", "")), file_name=file_name, sha256=sha256, signed_by=signed_by,
                   signature_sha256=signature_sha256, meta=ctx.meta(policy.ref))
