"""Findings pages: the queue, one finding with its rectification (整改) and the steps as forms —
acknowledge, assign, rectify, close (by a second person: four eyes), reopen.

Each step is ``CaseLedger.act("finding", …)``, the use case the API's ``/compliance/findings/{id}/<step>``
calls, under the same action of the permission matrix (``findings.<step>``). Which step is offered
follows the matrix and the finding's status only, never who the caller is: the domain decides the
four-eyes rule, and a refused step is shown with its rule and clause (409), as the API's problem is.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any

from flask import Flask, abort, redirect, render_template, request, url_for

from console import guard
from console.views import context, ledger, views
from domain.errors import DomainError
from domain.findings import Finding
from ledger.errors import NotFound, StaleVersion
from projections.compliance_queries import list_findings

STATUSES = ("open", "acknowledged", "assigned", "rectified", "closed", "reopened", "")
#: The steps a finding page offers, and the statuses each may be taken from (the domain's own sets).
STEPS: dict[str, frozenset[str]] = {"acknowledge": frozenset({"open"}), "assign": Finding.ASSIGNABLE,
                                    "rectify": Finding.RECTIFIABLE, "close": Finding.CLOSABLE,
                                    "reopen": Finding.REOPENABLE}
#: Longest free text of a form field, as the API's schemas (api/compliance.py) allow.
LIMITS = {"owner": 100, "team": 100, "corrective_action": 2000, "reason": 500, "evidence": 500}
MAX_EVIDENCE = 50
PAGE_SIZE = 200


def register(app: Flask) -> None:
    app.add_url_rule("/console/findings", "findings", findings)
    app.add_url_rule("/console/findings/<finding_id>", "finding", finding)
    for step in STEPS:
        app.add_url_rule(f"/console/findings/<finding_id>/{step}", step, _step(step), methods=["POST"])


@guard.needs("compliance.read")
def findings() -> Any:
    views().fresh()
    status = request.args.get("status", "open")
    status = status if status in STATUSES else "open"
    page = list_findings(views().runner.db, {"status": [status]} if status else {}, limit=PAGE_SIZE)
    return render_template("findings.html", findings=page["items"], status=status, statuses=STATUSES)


def _load(finding_id: str) -> Any:
    try:
        return ledger().get("finding", finding_id)
    except (NotFound, ValueError):
        abort(404, f"no finding {finding_id}")


@guard.needs("compliance.read")
def finding(finding_id: str) -> Any:
    found = _load(finding_id)
    steps = [s for s, statuses in STEPS.items() if found.status in statuses and guard.may(f"findings.{s}")]
    try:
        severities = ledger().policy_of(found).vocabulary("finding_severity").values
    except DomainError:  # a policy version without the vocabulary: the domain names the rule on assigning
        severities = ()
    return render_template("finding.html", f=found, steps=steps, severities=severities)


def _text(name: str) -> str | None:
    value = request.form.get(name, "").strip()
    if len(value) > LIMITS[name] or (value and not value.replace("\n", " ").isprintable()):
        abort(400, f"{name} is at most {LIMITS[name]} printable characters")
    return value or None


def _due_at(found: Any) -> datetime | None:
    """A due date from the form: the end of that day in the policy's time zone (None: the policy's days)."""
    text = request.form.get("due_on", "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        abort(400, "the due date is YYYY-MM-DD")
    return datetime.combine(day, time(23, 59), tzinfo=ledger().policy_of(found).tz)


def _args(step: str, found: Any) -> dict[str, Any]:
    """The step's arguments from the form, as the API's body schemas give them to ``act``."""
    if step == "assign":
        return {"owner": _text("owner") or "", "severity": request.form.get("severity", "")[:40],
                "team": _text("team"), "due_at": _due_at(found), "corrective_action": _text("corrective_action")}
    if step == "rectify":
        lines = [line.strip() for line in request.form.get("evidence", "").splitlines() if line.strip()]
        if len(lines) > MAX_EVIDENCE or any(len(line) > LIMITS["evidence"] or not line.isprintable() for line in lines):
            abort(400, f"evidence is 1 to {MAX_EVIDENCE} references of at most {LIMITS['evidence']} characters, "
                       "one a line")
        return {"corrective_action": _text("corrective_action") or "", "evidence": lines}
    return {}


def _version() -> int | None:
    """The version the page showed: a change made meanwhile is refused rather than overwritten."""
    try:
        return int(request.form["version"])
    except (KeyError, ValueError):
        return None


def _step(step: str) -> Callable[[str], Any]:
    @guard.needs(f"findings.{step}")
    def run(finding_id: str) -> Any:
        found = _load(finding_id)
        args = _args(step, found)
        try:
            ledger().act("finding", finding_id, step, context(_text("reason")), args, _version())
        except NotFound:
            abort(404, f"no finding {finding_id}")
        except StaleVersion as e:
            abort(409, f"the finding changed while you were looking at it ({e.message}): reload and try again")
        except DomainError as e:
            return render_template("refused.html", error=e), 409
        return redirect(url_for("finding", finding_id=finding_id))
    run.__name__ = step
    return run


__all__ = ["register"]
