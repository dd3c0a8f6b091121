"""Structured request logs: one JSON line per request on the ``caseledger.requests`` logger.

Fields: ``request_id`` (ours, also in the response's X-Request-Id), ``client_request_id`` (the
client's X-Request-Id, if it sent a usable one), ``caller`` and ``role`` (None before authentication), ``method``,
``path`` (without the query string, which may carry filters naming people), ``endpoint``,
``status`` and ``duration_ms``. Nothing from bodies or headers is logged.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from flask import Flask, Response, g, request

log = logging.getLogger("caseledger.requests")


class JsonLines(logging.Formatter):
    """A record's message (a dict) as one JSON object, with time and level."""

    def format(self, record: logging.LogRecord) -> str:
        fields = record.msg if isinstance(record.msg, dict) else {"message": record.getMessage()}
        line = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"), "level": record.levelname.lower(), **fields}
        return json.dumps(line, ensure_ascii=False, default=str)


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    @property
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # noqa: ANN001
        pass


def register_request_log(app: Flask) -> None:
    if not log.handlers:
        handler = _Stderr()
        handler.setFormatter(JsonLines())
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_line)


def _start() -> None:
    g.started = time.perf_counter()


def _line(response: Response) -> Response:
    caller = g.get("caller")
    started = g.get("started")
    log.info({"event": "request", "request_id": g.get("request_id"), "client_request_id": g.get("client_request_id"),
              "caller": getattr(caller, "actor_id", None),
              "role": getattr(caller, "role", None), "method": request.method, "path": request.path,
              "endpoint": request.endpoint, "status": response.status_code,
              "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None})
    return response
