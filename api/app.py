"""Application factory: wires the ledger, authentication and the resources into a Flask app.

Every request passes, in order: request id → authentication (:mod:`api.auth`, 401) →
authorization and the masking decision (:mod:`api.permissions`, 403) → idempotency
(:mod:`api.idempotency`: the key's claim, which the ledger marks in the transaction of the
request's events) → the handler. On the way out: disclosures are recorded (:mod:`api.masking`),
security headers added, an idempotent response kept, one JSON log line written
(:mod:`api.requestlog`); at the very end the claim is let go.
"""

from __future__ import annotations

import http
import logging
import uuid
from datetime import datetime
from typing import Any, Callable, Mapping

from flask import Flask, current_app, g, json, request
from flask_smorest import Api
from flask_smorest.utils import prepare_response

from api import idempotency, pagination, problems
from api.access import register_access
from api.auth import authenticate
from api.boundary import check_request, learn_contract
from api.audits import register_audits
from api.compliance import register_compliance
from api.exports import register_exports
from api.incidents import register_incidents
from api.work import register_work
from api.surveys import register_surveys
from api.log import register_log
from api.json_provider import OrjsonProvider
from api.masking import grade_responses, record_disclosures
from api.openapi import ContractDoc, document_vocabularies, finish_document, vocabulary_values
from api.observability import register_observability
from api.permissions import authorize
from api.read_models import register_read_models
from api.requestlog import register_request_log
from api.resources import register_resources
from api.retention import register_retention
from api.webhooks import register_webhooks
from console.mount import mount_console
from domain.permissions import AccessPolicy
from ledger.application import CaseLedger
from ledger.bootstrap import as_settings, build, transparency_log
from ledger.idempotency import IdempotencyStore
from ledger.outage import bounded_wait
from ledger.settings import Settings
from services.access_log import AccessLog
from services.tokens import TokenService

Clock = Callable[[], datetime]

#: Sent with every response: no sniffing, no framing, no referrer, no caching (read models that
#: support If-None-Match set their own ``Cache-Control: private, no-cache``).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}

_SECURITY_HEADERS = tuple((name, name.lower(), value) for name, value in SECURITY_HEADERS.items())

#: The document's ``info.description``: what holds for every operation.
API_DESCRIPTION = (
    "Event-sourced, audit-grade ledger for customer-service operations. Authenticate with "
    "`Authorization: Bearer <token>`. Errors are RFC 9457 `application/problem+json`; a refused command "
    "names its `rule` and `clause`. Records answer `ETag: \"<version>\"`: send it as `If-Match` to refuse "
    "a change made meanwhile (412). Read models answer an ETag derived from their log position: send it as "
    "`If-None-Match` for 304. Lists page with `cursor` and `limit`; the next page is `next_cursor` and "
    "`Link: <...>; rel=\"next\"`. Retry a POST safely with `Idempotency-Key`. Personal data is masked "
    "unless `X-Access-Reason` is sent by a role allowed to unmask (each such read is recorded).")


class ProblemApi(Api):
    """flask-smorest's Api, with every HTTP error rendered (and documented) as RFC 9457 problem+json."""

    ERROR_SCHEMA = problems.ProblemSchema

    def handle_http_exception(self, error):  # noqa: ANN001 - flask-smorest's signature
        return problems.http_problem(error)

    def _register_responses(self) -> None:
        """flask-smorest's per-status and default error responses, as problem+json."""
        for status in http.HTTPStatus:
            response: dict = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, problems.PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Error (RFC 9457 problem details)", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, problems.PROBLEM_JSON)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)

    def _openapi_json(self):  # noqa: ANN202 - flask-smorest's
        """The served document, completed by :func:`api.openapi.finish_document` (examples, Link)."""
        return current_app.response_class(json.dumps(self.document(), indent=2, sort_keys=False),
                                          mimetype="application/json")

    def document(self) -> dict:
        """The OpenAPI document as served at ``/openapi.json``."""
        return finish_document(self.spec.to_dict())


class LedgerFlask(Flask):
    """Flask, asking once per function whether it is a coroutine function: Flask asks on every call
    of every view and before-, after- and teardown-request function (≈ 20 ``inspect`` calls a request)."""

    #: Functions memoised at most: those registered at start-up are far fewer; any made per request
    #: (``after_this_request``) beyond this are asked about each time, as Flask does.
    SYNC_MEMO_SIZE = 4096

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._sync: dict[Callable[..., Any], Callable[..., Any]] = {}

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        sync = self._sync.get(func)
        if sync is None:
            sync = super().ensure_sync(func)
            if len(self._sync) < self.SYNC_MEMO_SIZE:
                self._sync[func] = sync
        return sync


def create_app(settings: Settings | Mapping[str, str], ledger: CaseLedger | None = None, *,
               tokens: TokenService | None = None, clock: Clock | None = None) -> Flask:
    """Build the Flask app for the ledger ``settings`` name (or the one given, already built)."""
    settings = as_settings(settings)
    app = LedgerFlask("caseledger", static_folder=None)  # an API: no static files, no unauthenticated route
    app.json = OrjsonProvider(app)  # the same JSON, encoded in C (api/json_provider.py, issue 22)
    app.config.update(
        API_TITLE="caseledger",
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
        JSON_SORT_KEYS=False,
        PUBLIC_LOG_RATE_LIMIT=settings.public_log_rate_limit,
    )
    ledger = app.extensions["caseledger"] = ledger or build(settings)
    access = tokens.access if tokens else AccessPolicy.load(grade_vocabulary=_data_grades(ledger))
    app.extensions["caseledger.access"] = access
    app.extensions["caseledger.tokens"] = tokens or TokenService(ledger, access)
    app.extensions["caseledger.access_log"] = AccessLog(ledger, access)
    app.extensions["caseledger.idempotency"] = IdempotencyStore(ledger)
    # Business time of a request, unless the body gives one: now, on the clock the ledger checks it against.
    app.extensions["caseledger.clock"] = clock or (lambda: ledger.clock())
    app.extensions["caseledger.log"] = transparency_log(ledger, settings)
    app.extensions["caseledger.settings"] = settings

    api = ProblemApi(app, spec_kwargs={"components": {"securitySchemes": {"bearer": {
        "type": "http", "scheme": "bearer", "description": "a token from 'caseledger tokens create' (cl_…)"}}},
        "security": [{"bearer": []}], "extra_plugins": [ContractDoc(app)], "info": {"description": API_DESCRIPTION}})
    document_vocabularies(api.ma_plugin.converter, vocabulary_values(ledger.policies, ledger.policy_name))
    problems.register(app)

    @app.before_request
    def _request_id() -> None:
        # Ours, always: a client could otherwise give its events the request id of someone else's.
        state = g._get_current_object()
        state.request_id = str(uuid.uuid4())
        state.client_request_id = client_request_id(request.headers.get("X-Request-Id"))

    app.before_request(authenticate)
    app.before_request(authorize)
    app.before_request(check_request)  # query, path and body against domain.text and the document
    app.before_request(idempotency.begin)

    # after_request functions run in reverse order of registration: the log line last.
    register_request_log(app)
    app.after_request(idempotency.finish)
    app.teardown_request(idempotency.teardown)

    @app.after_request
    def _headers(response):  # noqa: ANN001, ANN202
        headers = response.headers
        headers["X-Request-Id"] = getattr(g, "request_id", "")
        # As headers.update(SECURITY_HEADERS) and setdefault("Cache-Control", …), with one look at the
        # headers already there instead of a scan of them all per header set (issue 22).
        present = {name.lower() for name, _ in headers}
        for name, lower, value in _SECURITY_HEADERS:
            if lower in present:
                headers[name] = value
            else:
                headers.add(name, value)
        if "cache-control" not in present:
            headers.add("Cache-Control", "no-store")
        return response

    app.after_request(record_disclosures)
    app.after_request(pagination.link_next)  # every list with a next_cursor: Link: <…>; rel="next"

    register_resources(api)
    register_log(api)
    register_read_models(api)
    register_retention(api)
    register_incidents(api)  # issue 19: incidents, work queues, surveys of any case
    register_work(api)
    register_surveys(api)
    register_access(api)
    register_webhooks(api)
    register_compliance(api, access)  # only once the access policy knows its endpoints (see api/compliance.py)
    register_exports(api, access)  # likewise (api/exports.py): auditors' export jobs
    register_audits(api, access)  # likewise (api/audits.py): inspection samples and audit engagements
    grade_responses(api.spec, access)
    learn_contract(app, api)
    register_observability(app)
    mount_console(app)  # the web console (/console, /docs): its own app, sessions instead of bearer tokens
    # Outermost: the whole request, its before- and after-request functions included, waits at
    # most this long for an unreachable database, then it is answered 503 (ledger.outage).
    app.wsgi_app = BoundedDatabaseWait(app.wsgi_app, settings.db_timeout_seconds)  # type: ignore[method-assign]
    logging.getLogger("caseledger").setLevel(logging.INFO)
    return app


class BoundedDatabaseWait:
    """WSGI middleware: each request in its own :func:`ledger.outage.bounded_wait`."""

    def __init__(self, wsgi_app: Callable, seconds: float):
        self.wsgi_app, self.seconds = wsgi_app, seconds

    def __call__(self, environ: dict, start_response: Callable):  # noqa: ANN204 - WSGI's signature
        with bounded_wait(self.seconds):
            return self.wsgi_app(environ, start_response)


#: The longest X-Request-Id kept (as ``client_request_id``); a longer one is ignored.
CLIENT_REQUEST_ID_MAX = 128


def client_request_id(supplied: str | None) -> str | None:
    """The client's X-Request-Id if it is 1–128 printable ASCII characters, else None (ignored)."""
    if not supplied or len(supplied) > CLIENT_REQUEST_ID_MAX or not all(" " <= ch <= "~" for ch in supplied):
        return None
    return supplied


def _data_grades(ledger: CaseLedger) -> tuple[str, ...]:
    """The ``data_grade`` vocabulary of the ledger's service policy (003 §6.3)."""
    policy = ledger.policies.versions(ledger.policy_name)[-1]
    return tuple(policy.vocabulary("data_grade").values)
