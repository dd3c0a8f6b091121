"""The transparency log over HTTP: the latest signed checkpoint, inclusion and consistency proofs."""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Response, current_app
from flask_smorest import Api, Blueprint
from marshmallow import Schema, fields, validate
from werkzeug.exceptions import Forbidden, NotFound, ServiceUnavailable, UnprocessableEntity

from api.auth import current_caller
from api.schemas import BIGINT, Strict
from ledger.integrity.merkle import leaf_hash
from ledger.keys import KeyMissing
from ledger.transparency import LogError, TransparencyLog

blp = Blueprint("log", __name__, url_prefix="/log", description="Transparency log (RFC 9162) and signed checkpoints")


class InclusionQuery(Strict):
    aggregate_id = fields.UUID(required=True)
    version = fields.Integer(required=True, validate=validate.Range(min=1, max=BIGINT))
    tree_size = fields.Integer(load_default=None, validate=validate.Range(min=1, max=BIGINT))


class ConsistencyQuery(Strict):
    old = fields.Integer(required=True, validate=validate.Range(min=0, max=BIGINT))
    new = fields.Integer(load_default=None, validate=validate.Range(min=0, max=BIGINT))


class InclusionProof(Schema):
    leaf_index = fields.Integer()
    position = fields.Integer()
    tree_size = fields.Integer()
    leaf_hash = fields.String()
    root = fields.String()
    proof = fields.List(fields.String(), metadata={"description": "hex hashes, RFC 9162 §2.1.3 order"})


class ConsistencyProof(Schema):
    old = fields.Integer()
    new = fields.Integer()
    old_root = fields.String()
    new_root = fields.String()
    proof = fields.List(fields.String())


def _log() -> TransparencyLog:
    return current_app.extensions["caseledger.log"]


@blp.route("/checkpoint")
@blp.response(200, description="The latest signed checkpoint, as a C2SP signed note (text/plain)")
def latest_checkpoint():  # noqa: ANN201
    note = _log().latest_note()
    if note is None:
        raise NotFound("no checkpoint has been published yet")
    return Response(note, mimetype="text/plain")


@blp.route("/checkpoints", methods=["POST"])
@blp.response(201, description="Sign and publish a checkpoint now (administrators)")
def publish_checkpoint():  # noqa: ANN201
    if current_caller().role not in {"administrator", "service"}:
        raise Forbidden("only administrators and the scheduler publish checkpoints")
    try:
        _, note = _log().publish_checkpoint(datetime.now(timezone.utc))
    except KeyMissing as e:
        raise ServiceUnavailable(str(e)) from None
    return Response(note, status=201, mimetype="text/plain")


@blp.route("/proof/inclusion")
@blp.arguments(InclusionQuery, location="query")
@blp.response(200, InclusionProof)
def inclusion(query):  # noqa: ANN001, ANN201
    log = _log()
    try:
        index, position, leaf_bytes = log.leaf_of(query["aggregate_id"], query["version"])
        size = query["tree_size"] or log.size()
        proof = log.inclusion_proof(index, size)
        root = log.root(size)
    except LogError as e:
        raise UnprocessableEntity(str(e)) from None
    return {"leaf_index": index, "position": position, "tree_size": size, "leaf_hash": leaf_hash(leaf_bytes).hex(),
            "root": root.hex(), "proof": [h.hex() for h in proof]}


@blp.route("/proof/consistency")
@blp.arguments(ConsistencyQuery, location="query")
@blp.response(200, ConsistencyProof)
def consistency(query):  # noqa: ANN001, ANN201
    log = _log()
    new = query["new"] if query["new"] is not None else log.size()
    try:
        proof = log.consistency_proof(query["old"], new)
    except LogError as e:
        raise UnprocessableEntity(str(e)) from None
    return {"old": query["old"], "new": new, "old_root": log.root(query["old"]).hex(), "new_root": log.root(new).hex(),
            "proof": [h.hex() for h in proof]}


def register_log(api: Api) -> None:
    api.register_blueprint(blp)
