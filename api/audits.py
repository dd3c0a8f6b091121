"""Inspection samples and audit engagements (issue 20): draw a sample, record an inspection result per
sampled case; open an audit, record its observations, conclude it.

Like ``api.compliance``: :data:`ACTIONS` maps the endpoints to actions of the access policy and
:data:`DATA_GRADES` grades the response fields; :func:`register_audits` registers the blueprint only
once the policy grants the actions and grades the fields (fail closed). Records are read from the
ledger itself (one aggregate each); their events are the history. The lists (``GET /audits/samples``,
``GET /audits``) read the ``audits`` read model (``projections.audits``), keyset-paginated like every
list, with the same actions as reading one (``samples.read``, ``audits.read``).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app
from flask_smorest import Api
from marshmallow import RAISE, Schema, fields, validate
from werkzeug.exceptions import BadRequest

from api.arguments import Blueprint
from api.grants import policy_knows
from api.idempotency import answers
from api.openapi import IF_MATCH, IF_NONE_MATCH, reads_headers
from api.read_model_schemas import Names, Opt
from api.read_models import conditional, read_models
from api.resources import context, expected_version
from api.schemas import PRINTABLE, Cursor, NextCursor, Strict, Text
from projections.audits import list_audits, list_samples
from projections.queries import BadCursor
from services.sampling import draw_sample, open_audit

log = logging.getLogger("caseledger.api")

ACTIONS = {"audits.draw_sample": "samples.draw", "audits.sample": "samples.read", "audits.inspect": "samples.inspect",
           "audits.open_audit": "audits.open", "audits.audit": "audits.read", "audits.observe": "audits.observe",
           "audits.conclude": "audits.conclude",
           # the lists need what reading one needs
           "audits.list_samples": "samples.read", "audits.list_audits": "audits.read"}
DATA_GRADES = {
    "general": ["id", "version", "status", "policy_ref", "method", "stratify_by", "size", "seed", "population_size",
                "population_digest", "case_ids", "inspections", "criteria", "auditor", "period_from", "period_to",
                "observations", "conclusion",
                # the lists (projections.audits)
                "seq", "case_count", "inspected_count", "drawn_at", "opened_at", "concluded_at", "observation_count",
                "items", "next_cursor", "position"],
    "important": ["summary", "scope"],
}
_Id = fields.String(validate=[validate.Length(max=100), PRINTABLE])
_Names = fields.List(fields.String(validate=[validate.Length(max=100), PRINTABLE]), validate=validate.Length(max=50))


class Criteria(Strict):
    type, team, agent, channel = _Names, _Names, _Names, _Names
    from_ = fields.AwareDateTime(data_key="from")
    to = fields.AwareDateTime()


class DrawBody(Strict):
    criteria = fields.Nested(Criteria, load_default=dict)
    size = fields.Integer(required=True, validate=validate.Range(min=1))
    seed = fields.Integer(load_default=None, validate=validate.Range(min=0, max=2**53),
                          metadata={"description": "give one to draw a recorded sample again; default: a new one"})
    stratify_by = fields.String(load_default=None, validate=validate.Length(max=40))


class InspectBody(Strict):
    case_id = fields.String(required=True, validate=[validate.Length(max=100), PRINTABLE])
    result = fields.String(required=True, validate=validate.Length(max=40))
    note = Text(2000, load_default=None)
    finding_id = fields.UUID(load_default=None)


class AuditBody(Strict):
    title, scope = Text(200, required=True), Text(2000, required=True)
    period_from, period_to = fields.AwareDateTime(required=True), fields.AwareDateTime(required=True)
    auditor = Text(100, required=True)


class ObserveBody(Strict):
    text = Text(4000, required=True)
    case_ids, finding_ids, sample_ids = _Names, _Names, _Names


class ConcludeBody(Strict):
    conclusion = fields.String(required=True, validate=validate.Length(max=40))
    summary = Text(4000, required=True)


class SampleOut(Schema):
    id, status, policy_ref, method, population_digest = (fields.String() for _ in range(5))
    version, size, seed, population_size = fields.Integer(), fields.Integer(), fields.Integer(), fields.Integer()
    stratify_by = Opt()
    criteria, inspections = fields.Dict(), fields.Dict()
    case_ids = fields.List(fields.String())


class AuditOut(Schema):
    id, status, policy_ref, title, scope, auditor, period_from, period_to = (fields.String() for _ in range(8))
    version = fields.Integer()
    conclusion, summary = Opt(), Opt()
    observations = fields.List(fields.Dict())


class _ListQuery(Strict):
    auditor = Names(metadata={"description": "samples: who drew it; audits: the engagement's auditor (repeat: any of)"})
    from_ = fields.AwareDateTime(data_key="from", load_default=None,
                                 metadata={"description": "samples drawn from then on; audits whose period ends after"})
    to = fields.AwareDateTime(load_default=None,
                              metadata={"description": "samples drawn before then; audits whose period begins before"})
    cursor = Cursor()
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class SampleListQuery(_ListQuery):
    status = fields.List(fields.String(validate=validate.OneOf(["drawn", "inspected"])), load_default=None)


class AuditListQuery(_ListQuery):
    status = fields.List(fields.String(validate=validate.OneOf(["open", "concluded"])), load_default=None)


class SampleRow(Schema):
    id, status, method, auditor, drawn_at, policy_ref = (fields.String() for _ in range(6))
    stratify_by = Opt()
    seq, version, size, population_size = fields.Integer(), fields.Integer(), fields.Integer(), fields.Integer()
    case_count, inspected_count = fields.Integer(), fields.Integer()


class AuditRow(Schema):
    id, status, title, auditor, period_from, period_to, opened_at, policy_ref = (fields.String() for _ in range(8))
    concluded_at, conclusion = Opt(), Opt()
    seq, version, observation_count = fields.Integer(), fields.Integer(), fields.Integer()


class SamplePage(Schema):
    items = fields.List(fields.Nested(SampleRow))
    next_cursor = NextCursor()
    position = fields.Integer()


class AuditPage(Schema):
    items = fields.List(fields.Nested(AuditRow))
    next_cursor = NextCursor()
    position = fields.Integer()


def _list(query: dict[str, Any], lister: Any, key: str, schema: type) -> Any:
    live = read_models()
    position = live.fresh("audits")
    try:
        page = lister(live.runner.db, status=query["status"], auditor=query["auditor"], from_=query["from_"],
                      to=query["to"], cursor=query["cursor"], limit=query["limit"])
    except BadCursor as e:
        raise BadRequest(str(e)) from None
    items = [{"id": row.pop(key), **row} for row in page["items"]]
    return conditional({"items": items, "next_cursor": page["next_cursor"], "position": position}, schema)


def _sample(s: Any) -> Any:
    return {"id": str(s.id), "status": s.status, "policy_ref": s.policy_ref, "method": s.method, "size": s.size,
            "seed": s.seed, "population_size": s.population_size, "population_digest": s.population_digest,
            "stratify_by": s.stratify_by, "criteria": s.criteria, "inspections": s.inspections, "case_ids": s.case_ids,
            "version": s.version}, 200, {"ETag": f'"{s.version}"'}


def _audit(a: Any) -> Any:
    return {"id": str(a.id), "status": a.status, "policy_ref": a.policy_ref, "title": a.title, "scope": a.scope,
            "auditor": a.auditor, "period_from": a.period_from, "period_to": a.period_to, "version": a.version,
            "conclusion": a.conclusion, "summary": a.summary, "observations": a.observations}, 200, \
        {"ETag": f'"{a.version}"'}


def _ledger() -> Any:
    return current_app.extensions["caseledger"]


def _act(kind: str, record_id: Any, action: str, body: dict[str, Any]) -> Any:
    return _ledger().act(kind, record_id, action, context(), body, expected_version())


def _list_routes(blp: Blueprint) -> None:
    @blp.route("/samples", methods=["GET"], endpoint="list_samples")
    @blp.arguments(SampleListQuery, location="query", unknown=RAISE)
    @blp.response(200, SamplePage)
    @blp.doc(summary="Inspection samples in the order they were drawn, filtered, keyset-paginated")
    @reads_headers(IF_NONE_MATCH)
    def samples(query):  # noqa: ANN001, ANN202
        return _list(query, list_samples, "sample_id", SamplePage)

    @blp.route("", methods=["GET"], endpoint="list_audits")
    @blp.arguments(AuditListQuery, location="query", unknown=RAISE)
    @blp.response(200, AuditPage)
    @blp.doc(summary="Audit engagements in the order they were opened, filtered, keyset-paginated")
    @reads_headers(IF_NONE_MATCH)
    def audits(query):  # noqa: ANN001, ANN202
        return _list(query, list_audits, "audit_id", AuditPage)


def _routes(blp: Blueprint) -> None:
    _list_routes(blp)
    @blp.route("/samples", methods=["POST"], endpoint="draw_sample")
    @blp.arguments(DrawBody)
    @blp.response(200, SampleOut)
    @blp.doc(summary="Draw a random or stratified sample of cases with a recorded seed (the same seed draws the same)")
    @answers(lambda written, body: _sample(_ledger().get("sample", written.created_ids()[0])))
    def draw(body):  # noqa: ANN001, ANN202
        criteria = {("from" if k == "from_" else k): v for k, v in body["criteria"].items() if v}
        return _sample(draw_sample(_ledger(), context(), criteria, body["size"], seed=body["seed"],
                                   stratify_by=body["stratify_by"]))

    @blp.route("/samples/<uuid:sample_id>", endpoint="sample")
    @blp.response(200, SampleOut)
    @blp.doc(summary="Read one audit sample and what was inspected")
    def sample(sample_id):  # noqa: ANN001, ANN202
        return _sample(_ledger().get("sample", sample_id))

    @blp.route("/samples/<uuid:sample_id>/inspect", methods=["POST"], endpoint="inspect")
    @blp.arguments(InspectBody)
    @blp.response(200, SampleOut)
    @blp.doc(summary="Record the inspection result of one sampled case (once per case)")
    @answers(lambda written, body, sample_id: _sample(_ledger().get("sample", sample_id)))
    @reads_headers(IF_MATCH)
    def inspect(body, sample_id):  # noqa: ANN001, ANN202
        return _sample(_act("sample", sample_id, "inspect", {**body, "finding_id": body["finding_id"] and
                                                             str(body["finding_id"])}))

    @blp.route("", methods=["POST"], endpoint="open_audit")
    @blp.arguments(AuditBody)
    @blp.response(200, AuditOut)
    @blp.doc(summary="Open an audit engagement: title, scope, period and auditor")
    @answers(lambda written, body: _audit(_ledger().get("audit", written.created_ids()[0])))
    def open_(body):  # noqa: ANN001, ANN202
        return _audit(open_audit(_ledger(), context(), **body))

    @blp.route("/<uuid:audit_id>", endpoint="audit")
    @blp.response(200, AuditOut)
    @blp.doc(summary="Read one internal audit: scope, observations and conclusion")
    def audit(audit_id):  # noqa: ANN001, ANN202
        return _audit(_ledger().get("audit", audit_id))

    _audit_step(blp, "observe", ObserveBody, "The auditor records an observation linked to cases, findings and samples")
    _audit_step(blp, "conclude", ConcludeBody,
                "The auditor concludes the engagement (policy vocabulary audit_conclusion)")


def _audit_step(blp: Blueprint, action: str, schema: type, summary: str) -> None:
    """``POST /audits/<id>/<action>``: one step of an audit engagement, answered with the audit."""
    @blp.route(f"/<uuid:audit_id>/{action}", methods=["POST"], endpoint=action)
    @blp.arguments(schema)
    @blp.response(200, AuditOut)
    @blp.doc(summary=summary)
    @answers(lambda written, body, audit_id: _audit(_ledger().get("audit", audit_id)))
    @reads_headers(IF_MATCH)
    def step(body, audit_id):  # noqa: ANN001, ANN202
        return _audit(_act("audit", audit_id, action, body))


def known_to(access: Any) -> bool:
    return policy_knows(access, ACTIONS, DATA_GRADES)


def register_audits(api: Api, access: Any) -> None:
    if not known_to(access):
        log.warning("audit endpoints not registered: the access policy does not grant %s or grade their fields yet",
                    sorted(set(ACTIONS.values())))
        return
    blp = Blueprint("audits", __name__, url_prefix="/audits",
                    description="Inspection samples and audit engagements (issue 20)")
    _routes(blp)
    api.register_blueprint(blp)
