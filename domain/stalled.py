"""Cases that wait on someone who never comes: a silent customer, an archivist who never archives.

Pure deadlines (no clock reads; the calendar and the policy are passed in) for the two policy rules
that keep such cases from staying open forever — and so from never reaching the milestone that
starts their retention period (``ticket.archived``, ``complaint.archived``):

- ``rules.customer_silence``: a ticket fed back whose customer has not confirmed it by the deadline
  of the policy's confirmation clock (``ticket_clock``) plus ``ticket_grace_working_days`` may be
  closed as unconfirmed; a complaint whose customer was told the outcome and has not evaluated it
  ``complaint_grace_working_days`` later may be closed as unevaluated.
- ``rules.archive_watch``: a closed case still unarchived ``<subject>_grace_working_days`` after its
  closure is archived by the scheduled job.

A policy without the rule (versions before it existed) gives no deadline: its cases keep their terms.
They are not forgotten: :func:`overdue_under_successor` judges such a case by the windows of the
version in force now, and one that waited past them is a finding (``stalled_under_superseded_policy``)
— the case itself is left as it is.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from domain.calendar import BusinessCalendar, add_duration, add_working_days
from domain.policy import Policy, selection_attributes
from domain.suspicions import Suspicion


def _rule(policy: Policy, key: str) -> Any:
    return policy.rules.get(key)


def confirmation_due(ticket: Any, policy: Policy, calendar: BusinessCalendar) -> datetime | None:
    """When a fed-back ticket whose customer stays silent may be closed as unconfirmed."""
    rule = _rule(policy, "customer_silence")
    fed_back = getattr(ticket, "fed_back_at", None)
    if rule is None or fed_back is None or ticket.status != "fed_back":
        return None
    clock = policy.clock(rule["ticket_clock"])
    window = clock.deadline(datetime.fromisoformat(fed_back), selection_attributes("ticket", ticket), calendar, policy.tz)
    return add_working_days(window, int(rule["ticket_grace_working_days"]), calendar, policy.tz)


def evaluation_due(complaint: Any, policy: Policy, calendar: BusinessCalendar) -> datetime | None:
    """When a notified complaint whose customer never evaluates may be closed as unevaluated."""
    rule = _rule(policy, "customer_silence")
    notified = getattr(complaint, "notified_at", None)
    if rule is None or notified is None or complaint.status != "notified":
        return None
    return add_working_days(datetime.fromisoformat(notified), int(rule["complaint_grace_working_days"]), calendar,
                            policy.tz)


def archive_due(subject: str, case: Any, policy: Policy, calendar: BusinessCalendar) -> datetime | None:
    """When a closed, unarchived ticket or complaint is to be archived by the scheduled job."""
    rule = _rule(policy, "archive_watch")
    closed = getattr(case, "closed_at", None)
    closed_states = {"ticket": {"closed"}, "complaint": {"evaluated", "unevaluated"}}[subject]
    if rule is None or closed is None or case.status not in closed_states:
        return None
    return add_duration(datetime.fromisoformat(closed), int(rule[f"{subject}_grace_working_days"]), "working_days",
                        calendar, policy.tz)


#: What a watched case waits for, by kind and status: (stage, the rule with its window, when the wait began).
_WAITS = {("ticket", "fed_back"): ("confirmation", "customer_silence", "fed_back_at"),
          ("complaint", "notified"): ("evaluation", "customer_silence", "notified_at"),
          ("ticket", "closed"): ("archiving", "archive_watch", "closed_at"),
          ("complaint", "evaluated"): ("archiving", "archive_watch", "closed_at"),
          ("complaint", "unevaluated"): ("archiving", "archive_watch", "closed_at")}


def overdue_under_successor(kind: str, case_id: str, case: Any, policy: Policy, successor: Policy | None,
                            calendar: BusinessCalendar) -> Suspicion | None:
    """A case whose own version (``policy``) lacks the rule for what it waits on, judged by the version
    in force now (``successor``): the suspicion that it has stalled, due when the successor's window ends
    — not before the successor took effect (its windows bind nobody earlier). None when the case's own
    version has the rule (the job applies it), the successor has none, or the case waits on nothing."""
    wait = _WAITS.get((kind, case.status))
    if wait is None or successor is None or successor.ref == policy.ref:
        return None
    stage, rule_key, since_attr = wait
    if _rule(policy, rule_key) is not None or _rule(successor, rule_key) is None:
        return None
    if stage == "confirmation":
        window_ends = confirmation_due(case, successor, calendar)
    elif stage == "evaluation":
        window_ends = evaluation_due(case, successor, calendar)
    else:
        window_ends = archive_due(kind, case, successor, calendar)
    if window_ends is None:
        return None
    binding_from = datetime.combine(successor.effective_from, time(0), tzinfo=successor.tz)
    since = getattr(case, since_attr)
    return Suspicion("stalled_under_superseded_policy", kind, case_id, successor.ref, max(window_ends, binding_from),
                     {"case_policy_ref": policy.ref, "status": case.status, "waiting_for": stage, "since": since,
                      "window_rule": rule_key, "window_ends": window_ends.isoformat(),
                      "clause": successor.clause(rule_key)}, f"{stage}:{since}")
