"""One structured log format for every caseledger process: a JSON object per line, on stderr.

Every line has ``time`` (UTC, ISO 8601), ``level`` (lower case), ``logger``, ``process`` (``api``,
``scheduler``, ``projections``, ``webhooks``, ``cli``) and ``message`` — or, for a record whose
message is a dict (the API's request lines), that dict's fields. Lines written while a request or
a job runs also carry ``request_id``, ``actor`` and ``job_run_id``, from context variables the
entry points set (:func:`bind`), so a library or service module that only uses stdlib ``logging``
gets them without knowing about them. An exception adds ``exc_info`` (the traceback as text).

The formatter is python-json-logger's (a maintained library; a ``logging.Formatter``, so gunicorn's
``logconfig_dict`` and pytest's ``caplog`` work with it unchanged). The entry points configure it,
once per process: :func:`configure` (the CLI's process commands, the development server) and
:func:`gunicorn_logconfig` (``caseledger serve --prod``: gunicorn's own error log and the workers'
lines). Only the entry points call these; services and read models just log.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

REQUEST_ID: ContextVar[str | None] = ContextVar("caseledger_request_id", default=None)
ACTOR: ContextVar[str | None] = ContextVar("caseledger_actor", default=None)
JOB_RUN_ID: ContextVar[str | None] = ContextVar("caseledger_job_run_id", default=None)
_CONTEXT = {"request_id": REQUEST_ID, "actor": ACTOR, "job_run_id": JOB_RUN_ID}
#: The process name on every line (set by :func:`configure`).
_process: str | None = None


class JsonLines(JsonFormatter):
    """A log record as one JSON object (see the module docstring for its fields)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("json_ensure_ascii", False)  # Chinese stays readable
        kwargs.setdefault("json_default", str)
        super().__init__(*args, **kwargs)

    def add_fields(self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_record["time"] = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        log_record["level"] = record.levelname.lower()
        log_record["logger"] = record.name
        if _process:
            log_record["process"] = _process
        if not isinstance(record.msg, dict):  # a dict message: its fields are the line
            log_record["message"] = record.getMessage()
        log_record.update(message_dict)  # the dict's fields, and exc_info / stack_info if any
        for name, var in _CONTEXT.items():
            value = var.get()
            if value is not None:
                log_record.setdefault(name, value)


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def stderr_handler() -> logging.Handler:
    handler = _Stderr()
    handler.setFormatter(JsonLines())
    return handler


def configure(process: str, level: int = logging.INFO) -> None:
    """Make every logger of this process write JSON lines to stderr (replacing the root's handlers)."""
    global _process
    _process = process
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(stderr_handler())
    root.setLevel(level)


def configured() -> bool:
    """Whether the root logger writes our JSON lines (then nobody adds a handler of their own)."""
    return any(isinstance(h.formatter, JsonLines) for h in logging.getLogger().handlers)


def gunicorn_logconfig(process: str = "api") -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: its error log and every other logger as our JSON lines. Its
    access log stays off: the API writes one line per request itself (``api.requestlog``)."""
    global _process
    _process = process
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonLines"}},
        "handlers": {"console": handler, "error_console": handler},
        "root": {"level": "INFO", "handlers": ["console"]},
        "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False,
                                       "qualname": "gunicorn.error"},
                    "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": False,
                                        "qualname": "gunicorn.access"}},
    }


@contextmanager
def bind(**fields: str | None) -> Iterator[None]:
    """Within the block, lines carry these of ``request_id``, ``actor``, ``job_run_id``."""
    tokens = [(_CONTEXT[name], _CONTEXT[name].set(value)) for name, value in fields.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
