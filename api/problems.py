"""RFC 9457 problem details: every error leaves the API as ``application/problem+json``."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, json, request
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from domain.errors import DomainError, InvalidValue, PolicyError, TransitionForbidden
from ledger.errors import AlreadyExists, ConcurrentUpdate, InvalidRequest, NotFound, StaleVersion
from ledger.idempotency import ClaimLost
from ledger.unavailable import UNREACHABLE, storage_unavailable

PROBLEM_BASE = "https://caseledger.dev/problems/"
PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("caseledger.api")


def problem(status: int, title: str, detail: str | None = None, *, type_: str | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"type": PROBLEM_BASE + (type_ or str(status)), "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body["instance"] = request.path
    request_id = getattr(g, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    body.update({k: v for k, v in extra.items() if v is not None})
    # A refused value may be quoted back (an unknown field's name): a lone surrogate in it cannot be
    # encoded as UTF-8, so it goes out escaped rather than turning the refusal into a 500.
    text = json.dumps(body, ensure_ascii=False).encode("utf-8", "backslashreplace")
    response = Response(text, status=status, mimetype=PROBLEM_JSON)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


class ProblemSchema(Schema):
    """The body of every error response (documented as the API's default response)."""

    type = fields.String(metadata={"description": "URI of the problem type; rule/<rule> for refused commands"})
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    instance = fields.String(metadata={"description": "the request path"})
    request_id = fields.String()
    errors = fields.Raw(metadata={"description": "schema errors per field (422), per line for imports"})
    rule = fields.String(metadata={"description": "the rule that refused the command"})
    clause = fields.String(allow_none=True, metadata={"description": "where the rule comes from in the sources"})
    current_version = fields.Integer(metadata={"description": "412: the record's version now"})
    cause = fields.String(metadata={"description": "503: why nothing can be saved now (read-only, disk-full)"})


def invalid(errors: dict[str, Any], detail: str = "the request does not match the schema; see errors") -> Response:
    """422 naming each refused field (or query parameter, or import line) in ``errors``."""
    return problem(422, "Unprocessable Content", detail, type_="validation", errors=errors)


def malformed(where: str, message: str, *, type_: str = "malformed-json") -> Response:
    """400: the input cannot be read at all (not UTF-8, not JSON, nested too deeply); ``where`` names it."""
    return problem(400, "Bad Request", f"{where}: {message}", type_=type_, errors={where: [message]})


def http_problem(error: HTTPException) -> Response:
    """Werkzeug/flask-smorest errors, including schema validation (422) and bad JSON (400)."""
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    status = error.code or 500
    if status == 500:
        return _internal(error)
    extra: dict[str, Any] = {}
    headers = dict(data.get("headers") or {})
    if isinstance(error, MethodNotAllowed) and error.valid_methods:  # RFC 9110 §15.5.6: 405 MUST say which
        headers["Allow"] = ", ".join(sorted(error.valid_methods))
    if messages:
        extra["errors"] = _flatten_locations(messages)
    detail = data.get("message") or error.description
    if status == 503:  # the views' own "unavailable" (e.g. the read models cannot be read now)
        headers.setdefault("Retry-After", str(getattr(error, "retry_after", None) or UNREACHABLE.retry_after))
    if status == 422 and messages:
        detail = "the request does not match the schema; see errors"
        return problem(422, "Unprocessable Content", detail, type_="validation", headers=headers, **extra)
    if status == 400 and messages:
        detail = "the request body is not valid JSON"
        return problem(400, "Bad Request", detail, type_="malformed-json", headers=headers)
    return problem(status, error.name, detail, headers=headers, **extra)


def _flatten_locations(messages: dict[str, Any]) -> dict[str, Any]:
    """webargs nests errors under their location (json, query); callers care about the fields."""
    if len(messages) == 1 and next(iter(messages)) in {"json", "query", "headers", "form", "files", "path"}:
        return next(iter(messages.values()))
    return messages


def _internal(error: Exception) -> Response:
    unavailable = storage_unavailable(error)
    if unavailable is UNREACHABLE:  # every request of an outage says so: one line each, no traceback
        cause = getattr(error, "original_exception", None) or error  # not werkzeug's wrapper
        log.warning("storage unavailable (%s): %s: %s", unavailable.cause, type(cause).__name__,
                    " ".join(str(cause).split())[:300])
    elif unavailable is not None:  # not a bug: the operator has to act, the client to retry later
        log.error("storage unavailable (%s): %s", unavailable.cause, error, exc_info=error)
    if unavailable is not None:
        return problem(503, "Service Unavailable", unavailable.detail, type_="storage-unavailable",
                       headers={"Retry-After": str(unavailable.retry_after)}, cause=unavailable.cause)
    log.exception("unhandled error", exc_info=error)
    return problem(500, "Internal Server Error", "an unexpected error occurred; it has been logged")


def register(app: Flask) -> None:
    @app.errorhandler(TransitionForbidden)
    def _forbidden_transition(e: TransitionForbidden) -> Response:
        return problem(409, "Transition forbidden", e.describe(), type_=f"rule/{e.rule}", rule=e.rule, clause=e.clause)

    @app.errorhandler(InvalidValue)
    def _invalid_value(e: InvalidValue) -> Response:
        return problem(422, "Invalid value", e.describe(), type_=f"rule/{e.rule}", rule=e.rule, clause=e.clause)

    @app.errorhandler(PolicyError)
    def _policy(e: PolicyError) -> Response:
        return problem(422, "Policy does not allow this", e.describe(), type_=f"rule/{e.rule}", rule=e.rule,
                       clause=e.clause)

    @app.errorhandler(DomainError)
    def _domain(e: DomainError) -> Response:
        return problem(409, "Rule violated", e.describe(), type_=f"rule/{e.rule}", rule=e.rule, clause=e.clause)

    @app.errorhandler(NotFound)
    def _not_found(e: NotFound) -> Response:
        return problem(404, "Not Found", e.message, type_="not-found")

    @app.errorhandler(StaleVersion)
    def _stale(e: StaleVersion) -> Response:
        return problem(412, "Precondition Failed", e.message, type_="stale-version", current_version=e.actual,
                       headers={"ETag": f'"{e.actual}"'})

    @app.errorhandler(ConcurrentUpdate)
    def _conflict(e: ConcurrentUpdate) -> Response:
        return problem(409, "Conflict", e.message, type_="concurrent-update")

    @app.errorhandler(ClaimLost)
    def _claim_lost(e: ClaimLost) -> Response:
        return problem(409, "Conflict", e.message, type_="idempotency-key-taken-over")

    @app.errorhandler(AlreadyExists)
    def _exists(e: AlreadyExists) -> Response:
        return problem(409, "Conflict", e.message, type_="already-exists")

    @app.errorhandler(InvalidRequest)
    def _invalid(e: InvalidRequest) -> Response:
        return problem(422, "Unprocessable Content", e.message, type_="invalid-request")

    @app.errorhandler(Exception)
    def _unexpected(e: Exception) -> Response:
        if isinstance(e, HTTPException):
            return http_problem(e)
        return _internal(e)
