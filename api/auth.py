"""Bearer-token authentication: the caller's identity becomes the actor on every event.

Everything but the public paths needs a valid token: unknown, expired or revoked → 401.
What the caller may then do is decided by :mod:`api.permissions`.

Public (GET/HEAD, no token): liveness, readiness, metrics, the API's own description, and the
transparency log's hashes-only endpoints (:data:`PUBLIC_LOG_PATHS`, see :mod:`api.log`). On those
log endpoints a token is optional: a valid one identifies the caller (the inclusion lookup by
aggregate needs that, and identified callers are not rate-limited); any other is ignored.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request
from werkzeug.exceptions import HTTPException, Unauthorized
from werkzeug.routing import Map, Rule

from services.tokens import Caller, TokenService


class PublicPaths(frozenset):
    """Public paths and URL rules. ``x in PUBLIC_PATHS`` holds for each literal member (a path or,
    for a rule with variables, the rule exactly as written, so ``rule.rule in PUBLIC_PATHS`` works),
    and for a request path that one of the rules with variables matches."""

    def __new__(cls, paths: frozenset[str] | set[str]) -> PublicPaths:
        self = super().__new__(cls, paths)
        self._rules = Map([Rule(p, endpoint=p) for p in paths if "<" in p]).bind("localhost")
        # What every path a rule with variables matches starts with: any other path is answered
        # without running the URL map, i.e. every request to a private endpoint (issue 22: the match
        # ran for each of them).
        self._prefixes = tuple(p[:p.index("<")] for p in paths if "<" in p)
        return self

    def __contains__(self, path: object) -> bool:
        if frozenset.__contains__(self, path):
            return True
        if not isinstance(path, str) or not path.startswith("/") or not path.startswith(self._prefixes):
            return False
        try:
            self._rules.match(path, method="GET")
        except HTTPException:  # no match (or a redirect to one, which is not this path)
            return False
        return True


#: The transparency log's public, read-only, hashes-only endpoints (URL rules of :mod:`api.log`).
PUBLIC_LOG_PATHS = frozenset({"/log/checkpoint", "/log/proof/inclusion", "/log/proof/consistency",
                              "/log/tile/<level>/<path:index>"})
#: Paths anyone may read: liveness, readiness, metrics, the API's own description, the public log.
PUBLIC_PATHS = PublicPaths({"/healthz", "/readyz", "/metrics", "/openapi.json", *PUBLIC_LOG_PATHS})


def authenticate() -> None:
    req = request._get_current_object()  # the request itself, not a proxy lookup per use
    if req.method in ("GET", "HEAD") and req.path in PUBLIC_PATHS:
        if public_log_request():
            caller = _caller_of(req.headers.get("Authorization", ""))
            if caller is not None:
                g.caller = caller
        return
    caller = _caller_of(req.headers.get("Authorization", ""), required=True)
    g.caller = caller


def _caller_of(header: str, *, required: bool = False) -> Caller | None:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        if required:
            raise _unauthorized("send 'Authorization: Bearer <token>'")
        return None
    tokens: TokenService = current_app.extensions["caseledger.tokens"]
    caller = tokens.caller(token.strip())
    if caller is None and required:
        raise _unauthorized("the token is not known, has expired or was revoked")
    return caller


def public_log_request() -> bool:
    """Is this a GET/HEAD of one of the transparency log's public endpoints?"""
    rule = request.url_rule
    return request.method in ("GET", "HEAD") and rule is not None and rule.rule in PUBLIC_LOG_PATHS


def current_caller() -> Caller:
    return g.caller


def identified_caller() -> Caller | None:
    """The caller, on a public path only if they sent a valid token."""
    return g.get("caller")


def require_caller(why: str) -> Caller:
    """The caller; 401 on a public path where none sent a valid token."""
    caller = g.get("caller")
    if caller is None:
        raise _unauthorized(f"{why}: send 'Authorization: Bearer <token>' with a valid token")
    return caller


def _unauthorized(detail: str) -> Unauthorized:
    error = Unauthorized(detail)
    error.data = {"headers": {"WWW-Authenticate": 'Bearer realm="caseledger"'}}  # type: ignore[attr-defined]
    return error


def preloaded(kind: str, aggregate_id: Any) -> Any:
    """The record ``api.permissions.authorize`` loaded for this request's scope check (``g.loaded_record``),
    or None: issue 22, one load per request shared by the permission check and the handler. Handed
    out once (a command changes it)."""
    loaded = g.pop("loaded_record", None)
    if loaded is not None and loaded[:2] == (kind, str(aggregate_id)):
        return loaded[2]
    return None
