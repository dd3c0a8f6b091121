"""Work pages: KPI dashboard, SLA clocks, retention with legal holds and four-eyes
dispositions, checkpoints and verification status. Commands go through the same use cases as the
API (``CaseLedger.act``, ``services.retention``); a broken rule is shown with its rule and clause."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from flask import (
    Flask,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup

from console import guard
from console.charts import bar_chart
from console.views import business_now, context, ledger, views
from domain.errors import DomainError
from ledger.errors import NotFound
from projections.compliance_queries import list_job_runs, sla_summary
from projections.kpis import dashboard as kpi_dashboard
from services.retention import Retention, build_retention

GROUPINGS = ("day", "channel", "team")
MAX_PERIOD_DAYS = 366  # as the API's dashboards: bounds one page's work


def register(app: Flask) -> None:
    app.add_url_rule("/console/dashboard", "dashboard", dashboard)
    app.add_url_rule("/console/retention", "retention", retention)
    app.add_url_rule("/console/holds", "place_hold", place_hold, methods=["POST"])
    app.add_url_rule("/console/holds/<hold_id>/release", "release_hold", release_hold, methods=["POST"])
    app.add_url_rule("/console/dispositions", "propose", propose, methods=["POST"])
    app.add_url_rule("/console/dispositions/<disposition_id>", "disposition", disposition)
    for step in ("approve", "reject", "execute"):
        app.add_url_rule(f"/console/dispositions/<disposition_id>/{step}", step, _step(step), methods=["POST"])
    app.add_url_rule("/console/checkpoints", "checkpoints", checkpoints)


def _refused(error: DomainError) -> Any:
    """A rule of the domain said no: 409, naming the rule and its clause."""
    return render_template("refused.html", error=error), 409


@guard.needs("dashboards.read")
def dashboard() -> Any:
    states = views().fresh()
    led = ledger()
    tz = led.policies.versions(led.policy_name)[-1].tz
    today = business_now().astimezone(tz).date()
    group_by = request.args.get("group_by", "day")
    group_by = group_by if group_by in GROUPINGS else "day"
    try:
        last = date.fromisoformat(request.args["to"]) if request.args.get("to") else today
        first = date.fromisoformat(request.args["from"]) if request.args.get("from") else last - timedelta(days=29)
    except ValueError:
        abort(400, "dates are YYYY-MM-DD")
    if first > last or (last - first).days >= MAX_PERIOD_DAYS:
        abort(400, f"choose a period of 1 to {MAX_PERIOD_DAYS} days, from before to")
    body = kpi_dashboard(views().runner.db, led, first, last, group_by)
    charts = _charts(body)
    sla = sla_summary(views().runner.db, business_now()) if guard.may("compliance.read") else None
    return render_template("dashboard.html", body=body, charts=charts, sla=sla, states=states, group_by=group_by,
                           groupings=GROUPINGS, first=first, last=last,
                           verification=_last_verification() if guard.may("compliance.read") else None)


def _charts(body: dict[str, Any]) -> list[dict[str, Any]]:
    """One chart per KPI: a bar per group, the policy's target (with its clause) as a line."""
    out: dict[str, dict[str, Any]] = {}
    for group in body["groups"]:
        for kpi in group["kpis"]:
            entry = out.setdefault(kpi["key"], {"key": kpi["key"], "unit": kpi["unit"], "target": kpi["target"],
                                                "definition": kpi["definition"], "rows": []})
            entry["rows"].append((group["group"], kpi["value"], kpi["target"] and kpi["target"].get("met")))
    for entry in out.values():
        target = entry["target"]["value"] if entry["target"] else None
        entry["svg"] = Markup(bar_chart(entry["key"], [(label, value) for label, value, _ in entry["rows"]],
                                        target=target, unit=entry["unit"]))
    return list(out.values())


def _last_verification() -> dict[str, Any] | None:
    """The last run of the integrity job (services/log_audit.py, scheduled as ``integrity``)."""
    runs = list_job_runs(views().runner.db, {"job": ["integrity"]}, limit=1000)["items"]
    return runs[-1] if runs else None


def _retention() -> Retention:
    service = current_app.extensions.get("console.retention")
    if service is None:
        service = current_app.extensions["console.retention"] = build_retention(
            ledger(), current_app.extensions["caseledger.settings"])
    return service


@guard.needs("retention.read")
def retention() -> Any:
    service = _retention()
    now = service.clock()
    return render_template("retention.html", report=service.report(now), holds=service.holds(fresh=False),
                           destroyed=service.destroyed(), records=service.records(due_before=now, limit=200,
                                                                                  fresh=False), now=now)


def _hold_text(name: str, limit: int) -> str:
    value = request.form.get(name, "").strip()
    if len(value) > limit or not value.isprintable():
        abort(400, f"{name} is at most {limit} printable characters")
    return value  # an empty one is the domain's to refuse, with its rule


@guard.needs("holds.place")
def place_hold() -> Any:
    """``Retention.place_hold``, as ``POST /holds``: the target, the authority that ordered it, a reason."""
    target_id = _hold_text("target_id", 100)
    try:
        UUID(target_id)
    except ValueError:
        abort(400, "the target id is a record's id (a UUID)")
    try:
        _retention().place_hold(context(_hold_text("reason", 500) or None),
                                target_kind=_hold_text("target_kind", 40), target_id=target_id,
                                authority=_hold_text("authority", 200))
    except (NotFound, ValueError):
        abort(404, "no such record to hold: check the kind and id")
    except DomainError as e:
        return _refused(e)
    return redirect(url_for("retention", _anchor="holds-h"))


@guard.needs("holds.release")
def release_hold(hold_id: str) -> Any:
    try:
        _retention().release_hold(context(_hold_text("reason", 500) or None), hold_id)
    except (NotFound, ValueError):
        abort(404, f"no legal hold {hold_id}")
    except DomainError as e:
        return _refused(e)
    return redirect(url_for("retention", _anchor="holds-h"))


@guard.needs("dispositions.propose")
def propose() -> Any:
    subject = request.form.get("subject", "").strip()
    try:
        proposed = _retention().propose(context(request.form.get("reason") or None), subject)
    except DomainError as e:
        return _refused(e)
    return redirect(url_for("disposition", disposition_id=str(proposed.id)))


@guard.needs("retention.read")
def disposition(disposition_id: str) -> Any:
    try:
        found = ledger().get("disposition", disposition_id)
    except (NotFound, ValueError):
        abort(404)
    return render_template("disposition.html", d=found, steps=[s for s in ("approve", "reject", "execute")
                                                               if guard.may(f"dispositions.{s}")])


def _step(step: str) -> Callable[[str], Any]:
    @guard.needs(f"dispositions.{step}")
    def run(disposition_id: str) -> Any:
        service = _retention()
        try:
            getattr(service, step)(context(request.form.get("reason") or None), disposition_id)
        except (NotFound, ValueError):
            abort(404)
        except DomainError as e:
            return _refused(e)
        return redirect(url_for("disposition", disposition_id=disposition_id))
    run.__name__ = step
    return run


@guard.needs("log.read")
def checkpoints() -> Any:
    log = current_app.extensions["caseledger.log"]
    notes = log.checkpoint_notes()
    return render_template("checkpoints.html", size=log.size(), notes=list(reversed(notes[-20:])), count=len(notes),
                           verification=_last_verification() if guard.may("compliance.read") else None,
                           caller=g.caller)
