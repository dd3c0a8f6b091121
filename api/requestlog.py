"""Structured request logs: one JSON line per request on the ``caseledger.requests`` logger.

Fields: ``request_id`` (ours, also in the response's X-Request-Id), ``client_request_id`` (the
client's X-Request-Id, if it sent a usable one), ``caller`` and ``role`` (None before authentication), ``method``,
``path`` (without the query string, which may carry filters naming people), ``endpoint``,
``status`` and ``duration_ms``. Nothing from bodies or headers is logged.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

from ledger.structured_logs import ACTOR, REQUEST_ID, JsonLines, configured, stderr_handler

__all__ = ["JsonLines", "register_request_log"]
log = logging.getLogger("caseledger.requests")


def register_request_log(app: Flask) -> None:
    # The format is every process's (ledger.structured_logs); when the process configured it on the
    # root logger (caseledger serve, gunicorn), lines go there, else to a handler of our own.
    if not log.handlers and not configured():
        log.addHandler(stderr_handler())
    log.setLevel(logging.INFO)
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.before_request(_bind)  # registered after authentication: the caller is known by then
    app.after_request(_line)
    app.teardown_request(_unbind)


def _bind() -> None:
    """Every line logged while this request runs carries its request id and actor."""
    state = g._get_current_object()
    caller = state.get("caller")
    state.log_context = (REQUEST_ID.set(state.get("request_id")), ACTOR.set(getattr(caller, "actor_id", None)))


def _unbind(_: BaseException | None = None) -> None:
    tokens = g.pop("log_context", None)
    if tokens is not None:
        ACTOR.reset(tokens[1])
        REQUEST_ID.reset(tokens[0])


def _start() -> None:
    g.started = time.perf_counter()


def _line(response: Response) -> Response:
    state, req = g._get_current_object(), request._get_current_object()  # not a proxy lookup per field
    caller = state.get("caller")
    started = state.get("started")
    log.info({"event": "request", "request_id": state.get("request_id"),
              "client_request_id": state.get("client_request_id"), "caller": getattr(caller, "actor_id", None),
              "role": getattr(caller, "role", None), "method": req.method, "path": req.path,
              "endpoint": req.endpoint, "status": response.status_code,
              "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None})
    return response
