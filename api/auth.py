"""Bearer-token authentication: the caller's identity becomes the actor on every event."""

from __future__ import annotations

from flask import current_app, g, request
from werkzeug.exceptions import Forbidden, Unauthorized

from ledger.tokens import Caller, TokenBook

#: Paths anyone may read: liveness and the API's own description.
PUBLIC_PATHS = frozenset({"/healthz", "/openapi.json"})


def authenticate() -> None:
    if request.path in PUBLIC_PATHS or request.method == "OPTIONS":
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("send 'Authorization: Bearer <token>'")
    tokens: TokenBook = current_app.extensions["caseledger.tokens"]
    caller = tokens.caller(token.strip())
    if caller is None:
        raise _unauthorized("the token is not known")
    if caller.read_only and request.method not in {"GET", "HEAD"}:
        raise Forbidden(f"the {caller.role} role may read but not change anything")
    g.caller = caller


def current_caller() -> Caller:
    return g.caller


def _unauthorized(detail: str) -> Unauthorized:
    error = Unauthorized(detail)
    error.data = {"headers": {"WWW-Authenticate": 'Bearer realm="caseledger"'}}  # type: ignore[attr-defined]
    return error
