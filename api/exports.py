"""Export jobs over HTTP, for auditors: request a sealed bundle, watch its progress, download it.

``POST /exports`` records the request and answers 202 at once; the bundle is made in the
background (``services.export_jobs``: why a thread, and how a restart leaves an ``interrupted``
job rather than a half-written bundle). ``GET /exports/{job_id}`` shows status and progress;
``GET /exports/{job_id}/bundle`` serves the finished archive (``.tar.gz``: the bundle folder that
``caseledger verify-bundle`` checks offline) — only once completed and only if its SHA-256 is still
the one recorded, and each download is recorded as an event.

Access control: ``exports.create`` and ``exports.read`` (domain/permissions.toml); the response
fields are graded in :data:`DATA_GRADES`. Like the compliance endpoints, the blueprint is registered
only once the access policy knows them (fail closed).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, send_file, url_for
from flask_smorest import Api
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from werkzeug.exceptions import Conflict, NotFound

from api.arguments import Blueprint
from api.idempotency import answers
from api.resources import context, written_new
from api.schemas import Strict
from services.export import ExportError, Scope
from services.export_jobs import ExportJobs, ExportTampered

log = logging.getLogger("caseledger.api")

ACTIONS = {"exports.create": "exports.create", "exports.status": "exports.read", "exports.bundle": "exports.read"}
DATA_GRADES = {"general": ["id", "status", "scope", "requested_by", "done", "total", "events", "sha256", "downloads",
                           "links", "self", "bundle"],
               "important": ["reason"]}
SCOPES = ("period", "ticket", "complaint", "customer", "range")


class ExportRequest(Strict):
    scope = fields.String(required=True, validate=validate.OneOf(SCOPES))
    id = fields.UUID(load_default=None, metadata={"description": "customer, ticket or complaint id"})
    from_ = fields.AwareDateTime(data_key="from", load_default=None,
                                 metadata={"description": "period: business time from (inclusive)"})
    to = fields.AwareDateTime(load_default=None, metadata={"description": "period: business time to (exclusive)"})
    from_position = fields.Integer(load_default=1, validate=validate.Range(min=1))
    to_position = fields.Integer(load_default=None, validate=validate.Range(min=1))

    @validates_schema
    def _complete(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["scope"] in ("ticket", "complaint", "customer") and data.get("id") is None:
            raise ValidationError(f"a {data['scope']} export names its id", "id")
        if data["scope"] == "period" and (data.get("from_") is None or data.get("to") is None):
            raise ValidationError("a period export names from and to", "to")


class Links(Schema):
    self = fields.String()
    bundle = fields.String(allow_none=True)


class ExportState(Schema):
    id = fields.String()
    status = fields.String(metadata={"description": "requested | completed | failed | interrupted (request again)"})
    scope = fields.Dict()
    requested_by = fields.String()
    done = fields.Integer(metadata={"description": "events written so far"})
    total = fields.Integer(metadata={"description": "events in scope (0 until known)"})
    events = fields.Integer()
    sha256 = fields.String(allow_none=True, metadata={"description": "of the archive, once completed"})
    reason = fields.String(allow_none=True)
    downloads = fields.Integer()
    links = fields.Nested(Links)


def jobs() -> ExportJobs:
    extensions = current_app.extensions
    if "caseledger.export_jobs" not in extensions:
        extensions["caseledger.export_jobs"] = ExportJobs(extensions["caseledger"], extensions["caseledger.settings"],
                                                          extensions["caseledger.clock"])
    return extensions["caseledger.export_jobs"]


def _state(job_id: Any) -> dict[str, Any]:
    state = jobs().status(job_id)
    bundle = url_for("exports.bundle", job_id=state["id"]) if state["status"] == "completed" else None
    return {**state, "links": {"self": url_for("exports.status", job_id=state["id"]), "bundle": bundle}}


def _routes(blp: Blueprint) -> None:
    @blp.route("", methods=["POST"], endpoint="create")
    @blp.arguments(ExportRequest)
    @blp.response(202, ExportState)
    @blp.doc(summary="Request a sealed export bundle (made in the background; poll the job, then download)")
    @answers(lambda written, body: (_state(written_new("export_job", written).id), 202))
    def create(body):  # noqa: ANN001, ANN202
        try:
            scope = Scope(body["scope"], str(body["id"]) if body.get("id") else None, body["from_position"],
                          body.get("to_position"), body.get("from_"), body.get("to"))
        except ExportError as e:
            raise NotFound(str(e)) from None
        job = jobs().request(scope, context())
        return _state(job.id), 202

    @blp.route("/<uuid:job_id>", methods=["GET"], endpoint="status")
    @blp.response(200, ExportState)
    @blp.doc(summary="An export job's status and progress")
    def status(job_id):  # noqa: ANN001, ANN202
        return _state(job_id)

    @blp.route("/<uuid:job_id>/bundle", methods=["GET"], endpoint="bundle")
    @blp.doc(summary="Download a completed export (.tar.gz of the bundle folder); each download is recorded",
             responses={"200": {"description": "the archive", "content": {"application/gzip": {}}}})
    def bundle(job_id):  # noqa: ANN001, ANN202
        try:
            path = jobs().download(job_id, context())
        except ExportTampered as e:
            log.error("%s", e)
            raise Conflict("the export's archive no longer matches what the job recorded; request a new export") \
                from None
        return send_file(path, mimetype="application/gzip", as_attachment=True,
                         download_name=f"caseledger-export-{job_id}.tar.gz", max_age=0)


def known_to(access: Any) -> bool:
    granted = access.actions()
    graded = all(field in access.grades for names in DATA_GRADES.values() for field in names)
    return graded and all(a in granted for a in set(ACTIONS.values()))


def register_exports(api: Api, access: Any) -> None:
    if not known_to(access):
        log.warning("export endpoints not registered: the access policy does not grant %s or grade their fields",
                    sorted(set(ACTIONS.values())))
        return
    blp = Blueprint("exports", __name__, url_prefix="/exports", description="Auditors' export jobs (sealed bundles)")
    _routes(blp)
    api.register_blueprint(blp)
