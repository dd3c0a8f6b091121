"""Bearer-token authentication: the caller's identity becomes the actor on every event.

Everything but the public paths needs a valid token: unknown, expired or revoked → 401.
What the caller may then do is decided by :mod:`api.permissions`.
"""

from __future__ import annotations

from flask import current_app, g, request
from werkzeug.exceptions import Unauthorized

from services.tokens import Caller, TokenService

#: Paths anyone may read: liveness, readiness, metrics and the API's own description.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})


def authenticate() -> None:
    if request.path in PUBLIC_PATHS and request.method in ("GET", "HEAD"):
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("send 'Authorization: Bearer <token>'")
    tokens: TokenService = current_app.extensions["caseledger.tokens"]
    caller = tokens.caller(token.strip())
    if caller is None:
        raise _unauthorized("the token is not known, has expired or was revoked")
    g.caller = caller


def current_caller() -> Caller:
    return g.caller


def _unauthorized(detail: str) -> Unauthorized:
    error = Unauthorized(detail)
    error.data = {"headers": {"WWW-Authenticate": 'Bearer realm="caseledger"'}}  # type: ignore[attr-defined]
    return error
