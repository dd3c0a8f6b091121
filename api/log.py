"""The transparency log over HTTP: the latest signed checkpoint, inclusion and consistency proofs, tiles.

**Public, read-only, hashes only** (GET/HEAD, no token — ``api.auth.PUBLIC_LOG_PATHS``):

- ``/log/checkpoint`` — the latest signed checkpoint (C2SP signed note, ``text/plain``);
- ``/log/proof/inclusion?leaf_index=N`` or ``?leaf_hash=<64 hex>`` ``[&tree_size=S]`` — RFC 9162
  path as JSON, or with ``Accept: application/x-tlog-proof`` / ``format=tlog-proof`` as C2SP
  tlog-proof text, to the tree of a *signed* checkpoint (the latest, or the one of size S);
- ``/log/proof/consistency?old=M[&new=N]``;
- ``/log/tile/<L>/<N>[.p/<W>]`` — C2SP tlog-tiles hash tiles (height 8) of the tree of the latest
  checkpoint. Entry bundles (``/log/tile/entries/…``) are **not** served: entries are the events
  themselves, which are private; auditors with access get them through the authenticated API.

Answers name leaves by index and hash only — no event content, no aggregate, no log position. The
lookup by ``aggregate_id`` + ``version`` names an aggregate, so it needs a valid token (``log.read``).
Anonymous callers are rate-limited per client address (:data:`PUBLIC_RATE_LIMIT`; the Flask config
key ``PUBLIC_LOG_RATE_LIMIT`` overrides it); callers with a valid token are not.
"""

from __future__ import annotations

import time
from functools import partial
from datetime import datetime, timezone

from flask import Flask, Response, current_app, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from flask_smorest import Api
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema
from werkzeug.exceptions import Forbidden, NotFound, ServiceUnavailable, UnprocessableEntity

from api.arguments import Blueprint
from api.auth import current_caller, identified_caller, public_log_request, require_caller
from api.permissions import access_policy, action_for
from api.problems import problem
from api.schemas import BIGINT, Strict
from ledger.integrity.merkle import leaf_hash
from ledger.integrity.tlogproof import MEDIA_TYPE as TLOG_PROOF, format_proof
from ledger.keys import KeyMissing
from ledger.leafindex import ensure_leaf_hash_index
from ledger.logproofs import LogProofs, TilePathError, parse_tile_path
from ledger.transparency import LogError, TransparencyLog

blp = Blueprint("log", __name__, url_prefix="/log", description="Transparency log (RFC 9162) and signed checkpoints")

#: Requests per client address to the public log endpoints without a token (flask-limiter syntax).
PUBLIC_RATE_LIMIT = "120/minute"
RATE_LIMIT_CONFIG = "PUBLIC_LOG_RATE_LIMIT"  # Flask app config key (not an environment variable)
#: OpenAPI: the public endpoints take a token but do not need one.
OPTIONAL_TOKEN = [{}, {"bearer": []}]
IMMUTABLE = "public, max-age=31536000, immutable"


class InclusionQuery(Strict):
    leaf_index = fields.Integer(validate=validate.Range(min=0, max=BIGINT))
    leaf_hash = fields.String(validate=validate.Regexp(r"^[0-9a-fA-F]{64}$", error="64 hex digits"))
    aggregate_id = fields.UUID(metadata={"description": "with version; needs a token (names an aggregate)"})
    version = fields.Integer(validate=validate.Range(min=1, max=BIGINT))
    tree_size = fields.Integer(load_default=None, validate=validate.Range(min=1, max=BIGINT))
    format = fields.String(load_default=None, validate=validate.OneOf(["json", "tlog-proof"]),
                           metadata={"description": "tlog-proof: C2SP tlog-proof text (as Accept: " + TLOG_PROOF + ")"})

    @validates_schema
    def _one_leaf(self, data: dict, **_: object) -> None:
        named = [key for key in ("leaf_index", "leaf_hash", "aggregate_id") if key in data]
        if len(named) != 1:
            raise ValidationError("name the leaf by exactly one of leaf_index, leaf_hash, aggregate_id (with version)")
        if ("aggregate_id" in data) != ("version" in data):
            raise ValidationError("aggregate_id and version go together")


class ConsistencyQuery(Strict):
    old = fields.Integer(required=True, validate=validate.Range(min=0, max=BIGINT))
    new = fields.Integer(load_default=None, validate=validate.Range(min=0, max=BIGINT))


class InclusionProof(Schema):
    leaf_index = fields.Integer()
    position = fields.Integer(metadata={"description": "log position; only in answers to lookups by aggregate"})
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


def _proofs() -> LogProofs:
    return current_app.extensions["caseledger.logproofs"]


@blp.route("/checkpoint")
@blp.response(200, {"type": "string"}, content_type="text/plain",
              description="The latest signed checkpoint, as a C2SP signed note (public)")
@blp.doc(security=OPTIONAL_TOKEN)
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
@blp.arguments(InclusionQuery, location="query", unknown=RAISE)
@blp.response(200, InclusionProof)
@blp.alt_response(200, schema={"type": "string"}, content_type=TLOG_PROOF, success=True,
                  description="The proof as JSON, or as C2SP tlog-proof text (Accept: application/x-tlog-proof "
                              "or format=tlog-proof)")
@blp.doc(security=OPTIONAL_TOKEN)
def inclusion(query):  # noqa: ANN001, ANN201
    """Inclusion proof of one leaf (public by leaf_index or leaf_hash; by aggregate with a token).

    As C2SP tlog-proof text (Accept: application/x-tlog-proof, or format=tlog-proof) the proof is to
    the tree of a signed checkpoint: the latest, or the latest of size tree_size (404 if none)."""
    if "aggregate_id" in query:
        _may_look_up_aggregates()  # before anything else is said about the log
    log, proofs = _log(), _proofs()
    head = None
    if _wants_tlog_proof(query["format"]):
        head = proofs.signed_head(query["tree_size"])
        if head is None:
            raise NotFound("no checkpoint has been published" + (
                f" for tree size {query['tree_size']}" if query["tree_size"] else " yet"))
    size = head.size if head else query["tree_size"] or log.size()
    position = None
    try:
        if "aggregate_id" in query:
            index, position, leaf_bytes = log.leaf_of(query["aggregate_id"], query["version"])
            digest = leaf_hash(leaf_bytes)
        elif "leaf_hash" in query:
            digest = bytes.fromhex(query["leaf_hash"])
            index = _find(proofs, digest, size)
        else:
            index = query["leaf_index"]
        proof = log.inclusion_proof(index, size)
        if "leaf_index" in query:
            digest = proofs.leaf_hash(index)
    except LogError as e:
        raise UnprocessableEntity(str(e)) from None
    if head is not None:
        return Response(format_proof(index, proof, head.note), mimetype=TLOG_PROOF)
    answer = {"leaf_index": index, "tree_size": size, "leaf_hash": digest.hex(), "root": log.root(size).hex(),
              "proof": [h.hex() for h in proof]}
    return answer if position is None else {**answer, "position": position}


def _wants_tlog_proof(format_: str | None) -> bool:
    if format_ is not None:
        return format_ == "tlog-proof"
    return request.accept_mimetypes.best_match(["application/json", TLOG_PROOF]) == TLOG_PROOF


def _may_look_up_aggregates() -> None:
    caller = require_caller("a lookup by aggregate_id names an aggregate")
    if access_policy().scope(caller.role, action_for(request.endpoint or "")) is None:
        raise Forbidden(f"the {caller.role} role may not look up leaves by aggregate")


def _find(proofs: LogProofs, digest: bytes, size: int) -> int:
    index = proofs.find_leaf(digest, size)
    if index is None:
        start = proofs.scan_start(size)
        where = f"leaves {start} to {size - 1}" if start else f"the tree of size {size}"
        hint = " (lookups by hash search the newest leaves only here: ask by leaf_index)" if start else ""
        raise NotFound(f"no leaf with hash {digest.hex()} in {where}{hint}")
    return index


@blp.route("/proof/consistency")
@blp.arguments(ConsistencyQuery, location="query", unknown=RAISE)
@blp.response(200, ConsistencyProof)
@blp.doc(security=OPTIONAL_TOKEN)
def consistency(query):  # noqa: ANN001, ANN201
    log = _log()
    new = query["new"] if query["new"] is not None else log.size()
    try:
        proof = log.consistency_proof(query["old"], new)
    except LogError as e:
        raise UnprocessableEntity(str(e)) from None
    return {"old": query["old"], "new": new, "old_root": log.root(query["old"]).hex(), "new_root": log.root(new).hex(),
            "proof": [h.hex() for h in proof]}


@blp.route("/tile/<level>/<path:index>")
@blp.response(200, {"type": "string", "format": "binary"}, content_type="application/octet-stream",
              description="C2SP tlog-tiles hash tile: concatenated 32-byte hashes (public)")
@blp.doc(security=OPTIONAL_TOKEN)
def tile(level: str, index: str):  # noqa: ANN201
    """A hash tile of the tree of the latest checkpoint: ``/log/tile/<L>/<N>[.p/<W>]`` (c2sp.org/tlog-tiles).

    L is 0 to 63; N the tile index in 3-digit groups, all but the last prefixed with x (1234067 is
    x001/x234/067); W (1 to 255) the width of a partial tile. Level-0 tiles hold leaf hashes, the
    level-L tile N hash i is the root of leaves [(N*256+i) * 256**L, (N*256+i+1) * 256**L).
    Served when every hash of it lies in that tree (so also the partial tiles of older checkpoints);
    a tile's bytes never change, full or partial, so it is cached as immutable.
    Entry bundles (``tile/entries/…``) are not served: the entries are the events, which are private."""
    if level == "entries":
        raise NotFound("entry bundles are not served: log entries are private events; only hash tiles are public")
    try:
        tile_level, tile_index, width = parse_tile_path(level, index)
    except TilePathError as e:
        raise NotFound(f"not a tile path: {e}") from None
    head = _proofs().signed_head()
    if head is None:
        raise NotFound("no checkpoint has been published yet")
    try:
        data = _proofs().tile(tile_level, tile_index, width, head.size)
    except LogError as e:
        raise NotFound(f"{e} (the latest checkpoint's)") from None
    return Response(data, mimetype="application/octet-stream", headers={"Cache-Control": IMMUTABLE})


# -- rate limit and start-up --------------------------------------------------------------------
def _rate_limit() -> str:
    return str(current_app.config.get(RATE_LIMIT_CONFIG) or PUBLIC_RATE_LIMIT)


def _not_limited() -> bool:
    """Only anonymous requests to the public log endpoints count against the limit."""
    return not public_log_request() or identified_caller() is not None


def _too_many_requests(error: RateLimitExceeded) -> Response:
    limit = current_app.extensions["caseledger.log_limiter"].current_limit
    retry = max(1, int(limit.reset_at - time.time())) if limit is not None else 60
    return problem(429, "Too Many Requests", f"the public transparency log answers at most {error.description} "
                   "per client without a token; retry later", type_="rate-limited", headers={"Retry-After": str(retry)})


@blp.record_once
def _set_up(state) -> None:  # noqa: ANN001 - flask's BlueprintSetupState
    """Once per app, when the blueprint is registered (at start): rate limiter, leaf-hash index."""
    app: Flask = state.app
    limiter = Limiter(get_remote_address, app=app, storage_uri="memory://", application_limits=[_rate_limit],
                      application_limits_exempt_when=_not_limited, key_prefix="caseledger-public-log")
    # The limiter checks every request of the app (its before_request is app-wide); a request filter
    # is the first thing that check asks, so every other request leaves before the limiter resolves
    # its limits — that resolution was ≈ 13 % of an in-process API read (issue 22).
    limiter.request_filter(_not_limited)
    # And only this blueprint's requests run the check at all: flask-limiter registers it app-wide
    # (the one way it offers application limits); it is moved to the blueprint's own before-request
    # functions, which Flask runs after the app's (authentication first, as ``_not_limited`` needs).
    # Its after- and teardown-request functions (rate-limit headers, its per-request state) likewise.
    for hooks in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        for hook in [h for h in hooks.get(None, []) if _limiters(h) is limiter]:
            hooks[None].remove(hook)
            hooks.setdefault(blp.name, []).append(hook)
    app.extensions["caseledger.log_limiter"] = limiter
    app.register_error_handler(RateLimitExceeded, _too_many_requests)
    log = app.extensions["caseledger.log"]
    app.extensions["caseledger.logproofs"] = LogProofs(log, leaf_hash_indexed=ensure_leaf_hash_index(log))


def _limiters(hook: object) -> object:
    """The Limiter a request hook belongs to: a bound method's object, or a partial's first argument
    (flask-limiter registers both kinds)."""
    if isinstance(hook, partial):
        return hook.args[0] if hook.args else None
    return getattr(hook, "__self__", None)


def register_log(api: Api) -> None:
    api.register_blueprint(blp)


__all__ = ["PUBLIC_RATE_LIMIT", "RATE_LIMIT_CONFIG", "blp", "register_log"]
