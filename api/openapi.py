"""The OpenAPI document as a contract a generated client can rely on, completed in one place.

Every endpoint, whoever wrote it, gets here (:class:`ContractDoc`, an apispec plugin that sees each
operation as its blueprint is registered):

- an ``operationId``: the Flask endpoint (``tickets.classify`` → ``tickets_classify``; the method
  is added when one endpoint serves several), unless the endpoint declares its own;
- its error responses, each an RFC 9457 problem: 400 and 503 everywhere; 401 and 403 unless the
  operation needs no token; 404 with path parameters; 409 for writes; 412 where ``If-Match`` is
  read; 415 with a request body; 422 with a body or query parameters; 304 where
  ``If-None-Match`` is read (and ``default`` still, for the rarer 405/413/429);
- the request headers it reads: ``Idempotency-Key`` (every POST), ``X-Access-Reason``, and
  ``If-Match`` / ``If-None-Match`` where the view is marked with :func:`reads_headers`.

Vocabularies come from data, not from this module: a field with ``metadata={"vocabulary": KEY}``
is documented with ``enum`` = the values of that vocabulary in every version of the installation's
policy (``domain/policies/*.toml``), or of a domain status set (:data:`DOMAIN_VOCABULARIES`).
Only requests carry enums: a response may hold a value of an older policy, and a generated client
must not fail to parse history. The domain still decides (422 naming the clause).

Summaries are written by people, on the endpoint (``@blp.doc(summary=...)`` or the view's
docstring); :data:`SUMMARIES` holds them for endpoints of modules that do not declare their own.
Examples are added when the document is served (:func:`finish_document`, :mod:`api.examples`).
"""

from __future__ import annotations

import http
from typing import Any, Callable, Iterable, Mapping

from apispec import BasePlugin
from flask import Flask

from api.boundary import _ACCEPTS as BODY_MEDIA_TYPES
from api.examples import add_examples
from api.idempotency import HEADER as IDEMPOTENCY_KEY
from api.masking import REASON_HEADER as ACCESS_REASON
from domain.complaint import ComplaintStatus
from domain.feedback import FeedbackStatus
from domain.interaction import InteractionStatus
from domain.policy import PolicyBook
from domain.ticket import TicketStatus

IF_MATCH, IF_NONE_MATCH = "If-Match", "If-None-Match"
_READS = "_caseledger_reads_headers"
_WRITES = frozenset({"post", "put", "patch", "delete"})

#: Status sets of the domain (not policy data, but a vocabulary all the same), by vocabulary key.
DOMAIN_VOCABULARIES: dict[str, Iterable[str]] = {
    "ticket_status": TicketStatus.ALL, "complaint_status": ComplaintStatus.ALL,
    "interaction_status": InteractionStatus.ALL, "feedback_status": FeedbackStatus.ALL,
}

HEADERS: dict[str, dict[str, Any]] = {
    IF_MATCH: {"description": "the ETag you read (the record's version, e.g. \"3\"): the change is refused "
                              "with 412 if the record changed meanwhile", "schema": {"type": "string"}},
    IF_NONE_MATCH: {"description": "the ETag of the answer you have: 304 without a body if it is still the "
                                   "answer", "schema": {"type": "string"}},
    IDEMPOTENCY_KEY: {"description": "a retry with the same key and body returns the first response "
                                     "(a different body: 422; the first still running: 409)",
                      "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"}},
    ACCESS_REASON: {"description": "why you need personal data unmasked (needs personal.unmask; recorded)",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 500}},
}

#: Summaries of endpoints whose modules declare none (endpoint → summary). A new module declares its
#: own (``@blp.doc(summary=...)``); these are only for the older ``api.log`` and ``api.retention``.
SUMMARIES: dict[str, str] = {
    "log.latest_checkpoint": "The latest signed checkpoint of the transparency log (public)",
    "log.publish_checkpoint": "Sign and publish a checkpoint of the log now",
    "log.consistency": "Consistency proof between two tree sizes of the log (public)",
    "holds.list": "Legal holds, in the order they were placed",
    "holds.place": "Place a legal hold on a customer, ticket or complaint",
    "holds.get": "Read one legal hold",
    "holds.release": "Release a legal hold",
    "dispositions.propose": "Propose destroying a data subject's personal data",
    "dispositions.get": "Read one disposition and its destruction certificate",
}


def reads_headers(*names: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a view that reads these request headers (``If-Match``, ``If-None-Match``), so the
    document declares them and the statuses they bring. Put it directly above the ``def``."""

    def mark(view: Callable[..., Any]) -> Callable[..., Any]:
        setattr(view, _READS, tuple(names))
        return view

    return mark


def operation_id(endpoint: str, method: str, shared: bool) -> str:
    """``tickets.feed_back_result`` → ``tickets_feed_back_result`` (+ ``_post`` if ``shared``)."""
    base = endpoint.replace(".", "_").replace("-", "_")
    return f"{base}_{method}" if shared else base


def _header(name: str) -> dict[str, Any]:
    return {"in": "header", "name": name, "required": False, **HEADERS[name]}


def _response_name(status: int) -> str:
    """The component name flask-smorest's Api registers for a status (``NOT_FOUND``…)."""
    return http.HTTPStatus(status).name


class ContractDoc(BasePlugin):
    """Completes each operation as it is registered (see the module docstring)."""

    def __init__(self, app: Flask):
        self.app = app

    def operation_helper(self, path=None, operations=None, **kwargs):  # noqa: ANN001, ANN003, ANN201 - apispec's
        rule = kwargs.get("rule")
        if rule is None or not operations:
            return
        view = self.app.view_functions.get(rule.endpoint)
        reads = getattr(view, _READS, ())
        # A body of its own media types (api.boundary.accepts, e.g. the NDJSON import) is left out of the
        # document's requestBody (schema fuzzers and client generators cannot serialise it), but it is a body.
        own_body = getattr(view, BODY_MEDIA_TYPES, None) is not None
        methods = [m for m in operations if m in {"get", "post", "put", "patch", "delete"}]
        for method in methods:
            operation = operations[method]
            operation.setdefault("operationId", operation_id(rule.endpoint, method, len(methods) > 1))
            if not operation.get("summary") and rule.endpoint in SUMMARIES:
                operation["summary"] = SUMMARIES[rule.endpoint]
            parameters = operation.setdefault("parameters", [])
            declared = {(p.get("in"), p.get("name")) for p in parameters if isinstance(p, dict)}
            wanted = [*([IDEMPOTENCY_KEY] if method == "post" else []), ACCESS_REASON, *reads]
            parameters.extend(_header(n) for n in wanted if ("header", n) not in declared)
            responses = operation.setdefault("responses", {})
            for status in error_statuses(method, path or rule.rule, operation, reads, own_body=own_body):
                if status not in responses and str(status) not in responses:
                    responses[str(status)] = _response_name(status)


def error_statuses(method: str, path: str, operation: Mapping[str, Any], reads: Iterable[str], *,
                   own_body: bool = False) -> list[int]:
    """The problem statuses an operation can answer (see the module docstring)."""
    public = operation.get("security") == []
    has_query = any(isinstance(p, dict) and p.get("in") == "query" for p in operation.get("parameters", []))
    has_body = "requestBody" in operation or own_body
    statuses = [400]
    if not public:
        statuses += [401, 403]
    if "{" in path or "<" in path:
        statuses.append(404)
    if method in _WRITES:
        statuses.append(409)
    if IF_MATCH in reads:
        statuses.append(412)
    if has_body:
        statuses.append(415)
    if has_body or has_query:
        statuses.append(422)
    statuses.append(503)
    if IF_NONE_MATCH in reads:
        statuses.append(304)
    return statuses


def vocabulary_values(policies: PolicyBook, policy_name: str) -> dict[str, list[Any]]:
    """Vocabulary key → its values in every version of ``policy_name`` (first seen first), and the
    domain's status sets."""
    values: dict[str, list[Any]] = {key: sorted(statuses) for key, statuses in DOMAIN_VOCABULARIES.items()}
    for policy in policies.versions(policy_name):
        for key, vocabulary in policy.vocabularies.items():
            known = values.setdefault(key, [])
            known.extend(v for v in vocabulary.values if v not in known)
    return values


def document_vocabularies(converter: Any, values: Mapping[str, list[Any]]) -> None:
    """Teach apispec's marshmallow converter to publish ``metadata={"vocabulary": KEY}`` as ``enum``."""

    def vocabulary2enum(self, field, **kwargs):  # noqa: ANN001, ANN003, ANN202 - apispec's signature
        key = field.metadata.get("vocabulary")
        if key is None:
            return {}
        if key not in values:  # the contract test names it; the API still works (the domain decides)
            return {"x-vocabulary": key}
        return {"x-vocabulary": key, "enum": [*values[key], *([None] if field.allow_none else [])]}

    converter.add_attribute_function(vocabulary2enum)


def finish_document(document: dict[str, Any]) -> dict[str, Any]:
    """The served document: what the plugin could not know operation by operation — examples from
    the finished schemas, and the ``Link`` header of every paginated list."""
    add_examples(document)
    for operations in document.get("paths", {}).values():
        for method, operation in operations.items():
            if isinstance(operation, dict) and method == "get":
                _document_link(document, operation)
    return document


def _document_link(document: dict[str, Any], operation: dict[str, Any]) -> None:
    ok = operation.get("responses", {}).get("200")
    content = (ok or {}).get("content", {}).get("application/json", {})
    ref = content.get("schema", {}).get("$ref", "")
    schema = document.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[-1], {})
    if "next_cursor" in schema.get("properties", {}):
        ok.setdefault("headers", {})["Link"] = {
            "description": "RFC 8288 link to the next page (rel=\"next\"), while there is one; the same URL "
                           "as this one with ?cursor=<next_cursor>",
            "schema": {"type": "string"}}
