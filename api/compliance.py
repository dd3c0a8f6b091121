"""Compliance endpoints: SLA clock state (for the dashboard), compliance findings and job history.

The scheduled jobs themselves never run here (they run in ``caseledger scheduler``); these
endpoints only read their read models — caught up with the log before answering, like the case
lists — and acknowledge a finding (with a reason, an event; findings are never deleted).

Access control (``api.permissions``, ``domain/permissions.toml``) must know these endpoints:
:data:`ACTIONS` maps them to actions, :data:`DATA_GRADES` grades every response field (none is
personal data: read models hold ids and facts only). :func:`register_compliance` registers the
blueprint only once the access policy grants the actions and grades the fields, so an app whose
policy does not know them yet keeps starting (fail closed: the endpoints are simply absent).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app
from flask_smorest import Api
from marshmallow import RAISE, Schema, fields, validate
from werkzeug.exceptions import BadRequest, NotFound

from api.arguments import Blueprint
from api.read_model_schemas import Count, Flag, Names, Opt
from api.grants import policy_knows
from api.idempotency import answers
from api.openapi import IF_MATCH, IF_NONE_MATCH, reads_headers
from api.read_models import conditional, read_models
from api.resources import context, expected_version
from api.schemas import PRINTABLE, Strict, Text
from projections.compliance_queries import get_finding, list_findings, list_job_runs, list_sla_clocks, sla_summary
from projections.queries import BadCursor

log = logging.getLogger("caseledger.api")

#: Endpoint → action of the access policy.
ACTIONS = {"compliance.sla_clocks": "compliance.read", "compliance.sla_summary": "compliance.read",
           "compliance.findings": "compliance.read", "compliance.finding": "compliance.read",
           "compliance.job_runs": "compliance.read", "compliance.acknowledge": "findings.acknowledge",
           # rectification (issue 20): who may take each step is the permission matrix's; four eyes is the domain's
           "compliance.assign": "findings.assign", "compliance.rectify": "findings.rectify",
           "compliance.close": "findings.close", "compliance.reopen": "findings.reopen",
           "compliance.finding_kpis": "compliance.read"}
#: Grade of every response field that the access policy must know (none is core: no personal data).
DATA_GRADES = {
    "general": ["calendar_ref", "case_kind", "case_id", "clock", "cycle", "limit", "started_at", "stopped_at", "deadline", "breached",
                "breached_at", "next_check", "subject_kind", "raised_at", "raised_by_run", "acknowledged_role",
                "acknowledged_at", "job", "trigger", "instance", "started_wall", "ended_wall", "counts", "details",
                "running", "paused", "missed", "escalated"],
    "important": ["subject_id", "facts", "acknowledged_by"],
}
DATA_GRADES["general"] += ["rule", "team", "open", "closed"]  # the findings KPIs (open / overdue / closed)


class _Page(Strict):
    cursor = fields.String(load_default=None, validate=[validate.Length(max=200), PRINTABLE])
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    status = Names()


class SlaClockQuery(_Page):
    clock, case_kind, rung = Names(), Names(), Names()
    case_id = fields.List(fields.UUID(), load_default=None)
    breached = fields.Boolean(load_default=None, metadata={"description": "recorded as breached by the SLA job"})
    overdue = fields.Boolean(load_default=None, metadata={"description": "running and past its deadline at as_of"})
    as_of = fields.AwareDateTime(load_default=None, metadata={"description": "time for 'overdue' (default: now)"})


class SummaryQuery(Strict):
    as_of = fields.AwareDateTime(load_default=None)


class FindingQuery(_Page):
    rule, subject_kind = Names(), Names()
    subject_id = fields.List(fields.String(validate=[validate.Length(max=100), PRINTABLE]), load_default=None)


class JobRunQuery(_Page):
    job, trigger = Names(), Names()


class AcknowledgeBody(Strict):
    reason = Text(500, required=True, metadata={"description": "why the finding stands as it is"})


class AssignBody(Strict):
    owner = Text(100, required=True, metadata={"description": "who must rectify the finding"})
    severity = fields.String(required=True, validate=validate.Length(max=40),
                             metadata={"description": "policy vocabulary finding_severity (major, general, minor)"})
    team = Text(100, load_default=None)
    due_at = fields.AwareDateTime(load_default=None,
                                  metadata={"description": "default: the policy's days for the severity"})
    corrective_action = Text(2000, load_default=None, metadata={"description": "the action planned"})


class RectifyBody(Strict):
    corrective_action = Text(2000, required=True, metadata={"description": "what was done"})
    evidence = fields.List(Text(500), required=True, validate=validate.Length(min=1, max=50),
                           metadata={"description": "references to the evidence (documents, records, hashes)"})


class CloseBody(Strict):
    reason = Text(500, load_default=None, metadata={"description": "how the rectification was verified"})


class KpiQuery(Strict):
    as_of = fields.AwareDateTime(load_default=None)
    by = fields.List(fields.String(validate=validate.OneOf(["rule", "team"])), load_default=None)


class FindingKpi(Schema):
    rule, team = Opt(), Opt()
    open, overdue, closed = fields.Integer(), fields.Integer(), fields.Integer()


class FindingKpis(Schema):
    items = fields.List(fields.Nested(FindingKpi))
    as_of = fields.String()
    position = fields.Integer()


class SlaClock(Schema):
    id, case_kind, case_id, clock, status, unit, policy_ref = (fields.String() for _ in range(7))
    seq, cycle, paused_seconds, escalations = fields.Integer(), fields.Integer(), Count(), Count()
    clause, limit, rung, calendar_ref = Opt(), Opt(), Opt(), Opt()
    started_at, stopped_at, deadline, breached_at, next_check, updated_at = (Opt() for _ in range(6))
    breached, overdue = Flag(allow_none=True), Flag(allow_none=True)


class SlaClockPage(Schema):
    items = fields.List(fields.Nested(SlaClock))
    next_cursor, as_of = Opt(), fields.String()
    position = fields.Integer()


class SlaClockSummary(Schema):
    clock = fields.String()
    running, paused, met, missed, overdue, breached, escalated = (fields.Integer() for _ in range(7))


class SlaSummary(Schema):
    items = fields.List(fields.Nested(SlaClockSummary))
    as_of = fields.String()
    position = fields.Integer()


class Finding(Schema):
    id, rule, clause, subject_kind, subject_id, policy_ref, status = (fields.String() for _ in range(7))
    seq, version = fields.Integer(), fields.Integer()
    due_at, raised_at, raised_by_run = Opt(), Opt(), Opt()
    acknowledged_by, acknowledged_role, acknowledged_at, reason = Opt(), Opt(), Opt(), Opt()
    facts = fields.Dict()


class FindingPage(Schema):
    items = fields.List(fields.Nested(Finding))
    next_cursor = Opt()
    position = fields.Integer()


class JobRun(Schema):
    id, job, trigger, instance, status, as_of = (fields.String() for _ in range(6))
    seq = fields.Integer()
    started_wall, ended_wall, reason = Opt(), Opt(), Opt()
    counts, details = fields.Dict(), fields.Dict()


class JobRunPage(Schema):
    items = fields.List(fields.Nested(JobRun))
    next_cursor = Opt()
    position = fields.Integer()


_RENAMED = {"clock_id": "id", "clock_key": "clock", "limit_value": "limit", "finding_id": "id", "ack_reason": "reason",
            "run_id": "id", "trigger_kind": "trigger"}


def _item(row: dict[str, Any]) -> dict[str, Any]:
    return {_RENAMED.get(k, k): v for k, v in row.items()}


def _criteria(query: dict[str, Any], *names: str) -> dict[str, Any]:
    out = {name: [str(v) for v in query[name]] for name in names if query.get(name)}
    if query.get("breached") is not None:
        out["breached"] = [int(query["breached"])]
    return out


def _page(query: dict[str, Any], lister: Any, filters: tuple[str, ...], schema: type, **extra: Any) -> Any:
    live = read_models()
    position = live.fresh()
    try:
        page = lister(live.runner.db, _criteria(query, *filters), cursor=query["cursor"], limit=query["limit"], **extra)
    except BadCursor as e:
        raise BadRequest(str(e)) from None
    body = {"items": [_item(r) for r in page["items"]], "next_cursor": page["next_cursor"], "position": position}
    if "as_of" in extra:
        body["as_of"] = extra["as_of"].isoformat()
    return conditional(body, schema)


def _now() -> Any:
    return current_app.extensions["caseledger.clock"]()


def _routes(blp: Blueprint) -> None:
    @blp.route("/sla-clocks", endpoint="sla_clocks")
    @blp.arguments(SlaClockQuery, location="query", unknown=RAISE)
    @blp.response(200, SlaClockPage)
    @blp.doc(summary="SLA clock runs of every ticket, complaint and feedback: deadline, status, breach, escalation")
    @reads_headers(IF_NONE_MATCH)
    def sla_clocks(query):  # noqa: ANN001, ANN202
        return _page(query, list_sla_clocks, ("status", "clock", "case_kind", "case_id", "rung"), SlaClockPage,
                     as_of=query["as_of"] or _now(), overdue=query["overdue"])

    @blp.route("/sla-clocks/summary", endpoint="sla_summary")
    @blp.arguments(SummaryQuery, location="query", unknown=RAISE)
    @blp.response(200, SlaSummary)
    @blp.doc(summary="Per clock: runs running, paused, met, missed, overdue at as_of, breached and escalated")
    @reads_headers(IF_NONE_MATCH)
    def summary(query):  # noqa: ANN001, ANN202
        return _as_of_answer(query, SlaSummary, sla_summary)

    @blp.route("/findings", endpoint="findings")
    @blp.arguments(FindingQuery, location="query", unknown=RAISE)
    @blp.response(200, FindingPage)
    @blp.doc(summary="Compliance findings in the order they were raised, each with its rule and clause")
    @reads_headers(IF_NONE_MATCH)
    def findings(query):  # noqa: ANN001, ANN202
        return _page(query, list_findings, ("rule", "status", "subject_kind", "subject_id"), FindingPage)

    @blp.route("/findings/<uuid:finding_id>", endpoint="finding")
    @blp.response(200, Finding)
    @blp.doc(summary="Read one compliance finding: its rule, clause, facts and rectification so far")
    def finding(finding_id):  # noqa: ANN001, ANN202
        read_models().fresh()
        return _finding(finding_id)

    @blp.route("/findings/<uuid:finding_id>/acknowledge", methods=["POST"], endpoint="acknowledge")
    @blp.arguments(AcknowledgeBody)
    @blp.response(200, Finding)
    @blp.doc(summary="Acknowledge a finding with a reason (an event; findings are never deleted)",
             description="Roles: the policy's audit.acknowledge. Send If-Match with the finding's ETag to refuse "
                         "a change made meanwhile (412).")
    @answers(lambda written, body, finding_id: _fresh_finding(finding_id))  # as acknowledged, in the read model
    @reads_headers(IF_MATCH)
    def acknowledge(body, finding_id):  # noqa: ANN001, ANN202
        ledger = current_app.extensions["caseledger"]
        ledger.act("finding", finding_id, "acknowledge", context(reason=body["reason"]), {}, expected_version())
        return _fresh_finding(finding_id)

    _rectification_routes(blp)

    @blp.route("/job-runs", endpoint="job_runs")
    @blp.arguments(JobRunQuery, location="query", unknown=RAISE)
    @blp.response(200, JobRunPage)
    @blp.doc(summary="History of the scheduled compliance jobs (started, finished with counts, failed with reason)")
    @reads_headers(IF_NONE_MATCH)
    def job_runs(query):  # noqa: ANN001, ANN202
        return _page(query, list_job_runs, ("job", "status", "trigger"), JobRunPage)


def _rectification_routes(blp: Blueprint) -> None:
    """The steps of a finding's rectification (整改): assign, rectify, close (four eyes), reopen; its KPIs."""
    def step(action: str, schema: type, summary: str) -> None:
        @blp.route(f"/findings/<uuid:finding_id>/{action}", methods=["POST"], endpoint=action)
        @blp.arguments(schema)
        @blp.response(200, Finding)
        @blp.doc(summary=summary, description="Send If-Match with the finding's ETag to refuse a change made "
                                              "meanwhile (412).")
        @answers(lambda written, body, finding_id: _fresh_finding(finding_id))
        @reads_headers(IF_MATCH)
        def handler(body, finding_id):  # noqa: ANN001, ANN202
            body = dict(body)
            ctx = context(reason=body.pop("reason", None))
            current_app.extensions["caseledger"].act("finding", finding_id, action, ctx, body, expected_version())
            return _fresh_finding(finding_id)

    step("assign", AssignBody, "Assign a finding for rectification: owner, severity, due date, planned action")
    step("rectify", RectifyBody, "The owner records the corrective action taken and its evidence")
    step("close", CloseBody, "Verify a rectification and close the finding (not by its owner: four eyes)")
    step("reopen", AcknowledgeBody, "Reopen a rectified or closed finding, with a reason")

    @blp.route("/findings/kpis", endpoint="finding_kpis")
    @blp.arguments(KpiQuery, location="query", unknown=RAISE)
    @blp.response(200, FindingKpis)
    @blp.doc(summary="Findings open, overdue (rectification past its due date) and closed, by rule and team")
    @reads_headers(IF_NONE_MATCH)
    def finding_kpis(query):  # noqa: ANN001, ANN202
        from projections.rectification import finding_kpis as kpis

        by = tuple(query["by"] or ("rule", "team"))
        return _as_of_answer(query, FindingKpis, lambda db, as_of: kpis(db, as_of, by))


def _as_of_answer(query: dict[str, Any], schema: type, items_at: Any) -> Any:
    """``items_at(db, as_of)`` from the fresh read models, at the query's ``as_of`` (default: now), with the
    position read."""
    live = read_models()
    position = live.fresh()
    as_of = query["as_of"] or _now()
    return conditional({"items": items_at(live.runner.db, as_of), "as_of": as_of.isoformat(),
                        "position": position}, schema)


def _fresh_finding(finding_id: Any) -> Any:
    read_models().fresh()
    return _finding(finding_id)


def _finding(finding_id: Any) -> Any:
    row = get_finding(read_models().runner.db, str(finding_id))
    if row is None:
        raise NotFound(f"no finding {finding_id}")
    return _item(row), 200, {"ETag": f'"{row["version"]}"'}


def known_to(access: Any) -> bool:
    """Does the access policy grant these endpoints' actions to someone and grade their fields?"""
    return policy_knows(access, ACTIONS, DATA_GRADES)


def register_compliance(api: Api, access: Any) -> None:
    if not known_to(access):
        log.warning("compliance endpoints not registered: the access policy does not grant %s or grade their "
                    "fields yet (see api/compliance.py ACTIONS and DATA_GRADES)", sorted(set(ACTIONS.values())))
        return
    blp = Blueprint("compliance", __name__, url_prefix="/compliance",
                    description="Scheduled compliance jobs: SLA clocks, findings, job history")
    _routes(blp)
    api.register_blueprint(blp)
