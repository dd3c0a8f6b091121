"""Application factory: wires the ledger, authentication and the resources into a Flask app."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone
from typing import Callable, Mapping

from flask import Flask, g, request
from flask_smorest import Api

from api import problems
from api.auth import authenticate
from api.log import register_log
from api.read_models import register_read_models
from api.resources import register_resources
from ledger.application import CaseLedger
from ledger.bootstrap import Settings, build, transparency_log
from ledger.tokens import TokenBook

Clock = Callable[[], datetime]


class ProblemApi(Api):
    """flask-smorest's Api, with every HTTP error rendered as RFC 9457 problem+json."""

    def handle_http_exception(self, error):  # noqa: ANN001 - flask-smorest's signature
        return problems.http_problem(error)


def create_app(ledger: CaseLedger | None = None, *, tokens: TokenBook | None = None,
               clock: Clock | None = None, environ: Mapping[str, str] | None = None) -> Flask:
    """Build the Flask app; ``environ`` (default: the process environment) configures what is not given."""
    settings = Settings.from_env(environ)
    app = Flask("caseledger")
    app.config.update(
        API_TITLE="caseledger",
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    app.extensions["caseledger"] = ledger or build(environ)
    app.extensions["caseledger.tokens"] = tokens or TokenBook.load(settings.tokens_file)
    app.extensions["caseledger.clock"] = clock or (lambda: datetime.now(timezone.utc))
    app.extensions["caseledger.log"] = transparency_log(app.extensions["caseledger"], environ)

    api = ProblemApi(app, spec_kwargs={"components": {"securitySchemes": {
        "bearer": {"type": "http", "scheme": "bearer"}}}, "security": [{"bearer": []}]})
    problems.register(app)

    @app.before_request
    def _request_id() -> None:
        supplied = request.headers.get("X-Request-Id", "")
        g.request_id = supplied if 0 < len(supplied) <= 100 and supplied.isprintable() else str(uuid.uuid4())

    app.before_request(authenticate)

    @app.after_request
    def _headers(response):  # noqa: ANN001, ANN202
        response.headers["X-Request-Id"] = getattr(g, "request_id", "")
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    @app.get("/healthz")
    def healthz():  # noqa: ANN202
        return {"status": "ok"}

    register_resources(api)
    register_log(api)
    register_read_models(api)
    logging.getLogger("caseledger").setLevel(logging.INFO)
    return app
