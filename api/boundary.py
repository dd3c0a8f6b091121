"""The boundary: a request's query string, path parameters and body are checked before any handler
(or webargs) reads them, by the rules of :mod:`domain.text` and the operation's OpenAPI document.

- **Query parameters**: only those the operation documents (422 naming the stranger: a misspelt
  filter must not widen a result, a parameter sent where none is read must not be ignored); each
  valid UTF-8 (400) and free of control characters (422, e.g. ``%00``, which PostgreSQL refuses); a
  pagination ``cursor`` must be one this API issued, its position within BIGINT (400).
- **Path parameters**: no control characters (404: no resource has such a name).
- **Bodies** (any method but GET/HEAD/OPTIONS, when there is a body): ``application/json`` (or
  ``application/*+json``) unless the view declares other media types with :func:`accepts` (415);
  UTF-8, JSON, at most ``MAX_JSON_DEPTH`` levels deep (400); no lone surrogate or oversized
  number anywhere (422, naming the field). The fields themselves are the schemas' business.

It runs after authentication and authorization (a stranger learns nothing about the contract) and
before idempotency (a refused request claims no key).
"""

from __future__ import annotations

import base64
import json
from typing import Any, Callable
from urllib.parse import unquote_to_bytes

from flask import Flask, Request, Response, current_app, g, request
from flask_smorest import Api
from flask_smorest.spec.plugins import FlaskPlugin

from api.arguments import PARSED_BODY
from api.problems import invalid, malformed, problem
from domain import text

_ACCEPTS = "_caseledger_accepts"
_CONTRACT = "caseledger.query_contract"
_NO_BODY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def accepts(*media_types: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a view that takes a body of these media types instead of JSON (and reads it itself).
    Put it directly above the ``def``: flask-smorest's decorators copy the mark outwards."""

    def mark(view: Callable[..., Any]) -> Callable[..., Any]:
        setattr(view, _ACCEPTS, frozenset(media_types))
        return view

    return mark


def learn_contract(app: Flask, api: Api) -> None:
    """Read the query parameters of every operation from the OpenAPI document (once every blueprint
    is registered, so the document is complete; :func:`check_request` is registered before that,
    so that it runs ahead of idempotency)."""
    app.extensions[_CONTRACT] = documented_query_parameters(api.spec.to_dict())


def documented_query_parameters(document: dict[str, Any]) -> dict[tuple[str, str], frozenset[str]]:
    """(OpenAPI path, method) → the names of the query parameters the operation documents."""
    contract = {}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if isinstance(operation, dict) and "responses" in operation:
                contract[(path, method)] = frozenset(p["name"] for p in operation.get("parameters", [])
                                                     if p.get("in") == "query")
    return contract


def check_request() -> Response | None:
    req = request._get_current_object()  # the request itself, not a proxy lookup per use (issue 22)
    rule = req.url_rule
    if rule is None or req.method == "OPTIONS":
        return None  # routing failed (its 404/405 follows), or a preflight: nothing is read
    return _check_path(req) or _check_query(rule.rule, req) or _check_body(req)


def _check_path(req: Request) -> Response | None:
    for name, value in (req.view_args or {}).items():
        if isinstance(value, str) and (why := text.text_problem(value)):
            return problem(404, "Not Found", f"no resource has such a name: {name} {why}", errors={name: [why]})
    return None


def _check_query(rule: str, req: Request) -> Response | None:
    if not req.query_string:
        return None
    pairs = []
    for chunk in req.query_string.split(b"&"):
        if not chunk:
            continue
        raw_name, _, raw_value = chunk.partition(b"=")
        try:
            pairs.append((_decoded(raw_name), _decoded(raw_value)))
        except text.MalformedInput as e:
            name = unquote_to_bytes(raw_name.replace(b"+", b" ")).decode("utf-8", "backslashreplace")
            return malformed(text.printable(name), str(e), type_="malformed-query")
    method = "get" if req.method == "HEAD" else req.method.lower()
    documented = current_app.extensions.get(_CONTRACT, {}).get((FlaskPlugin.flaskpath2openapi(rule), method))
    errors: dict[str, list[str]] = {}
    for name, value in pairs:
        if documented is not None and name not in documented:
            errors.setdefault(text.printable(name), []).append("Unknown field.")
        elif why := text.text_problem(name) or text.text_problem(value):
            errors.setdefault(text.printable(name), []).append(why)
    if errors:
        return invalid(errors, "the query does not match the operation's parameters; see errors")
    cursor = req.args.get("cursor")
    if cursor is not None and (why := cursor_problem(cursor)):
        return malformed("cursor", why, type_="malformed-query")
    return None


def _decoded(raw: bytes) -> str:
    return text.decode_utf8(unquote_to_bytes(raw.replace(b"+", b" ")))


def cursor_problem(cursor: str) -> str | None:
    """A page cursor is base64url JSON ``{"k": <list>, "after": <position>}`` (``projections.queries``
    makes them). The list's own check decides whether it is one of *its* cursors; here only what
    would otherwise reach a database: a position that is no BIGINT (SQLite cannot bind it)."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after = data["after"]
    except (ValueError, KeyError, TypeError):
        return "not a cursor this API issued (pass next_cursor back unchanged)"
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= text.BIGINT:
        return "not a cursor this API issued (its position is out of range)"
    return None


def _check_body(req: Request) -> Response | None:
    if req.method in _NO_BODY_METHODS:
        return None
    body = req.get_data(cache=True)  # 413 beyond MAX_CONTENT_LENGTH
    if not body:
        return None
    view = current_app.view_functions.get(req.endpoint or "")
    own = getattr(view, _ACCEPTS, None)
    mimetype = req.mimetype
    if own is not None:
        if mimetype in own:
            return None  # the view reads it (and applies the same rules line by line)
        return problem(415, "Unsupported Media Type", f"send the body as {' or '.join(sorted(own))}",
                       type_="unsupported-media-type")
    if not _is_json(mimetype):
        sent = f"it came as {mimetype}" if mimetype else "it came without a Content-Type"
        return problem(415, "Unsupported Media Type", f"send the body as application/json ({sent})",
                       type_="unsupported-media-type")
    try:
        parsed = text.loads(body)
    except text.MalformedInput as e:
        return malformed("body", f"not valid JSON: {e}")
    except text.RefusedValues as e:
        return invalid(e.messages())
    setattr(g, PARSED_BODY, (parsed,))  # the view's arguments are loaded from it (api.arguments)
    return None


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))
