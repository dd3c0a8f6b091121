"""The served OpenAPI document is a contract: every operation, whoever added it, is held to it.

Each operation must have an operationId (unique), a summary written for people, its error
responses declared as RFC 9457 problems, the headers it reads, and an example for its request body
and success response that validates against the schema. Vocabularies are enums taken from the
policy data. A new endpoint that misses any of this fails here, naming itself.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

import jsonschema_rs

from domain.policy import PolicyBook
from ledger.kinds import ACTIONS
from domain.ticket import TicketStatus

METHODS = ("get", "post", "put", "patch", "delete")
#: A wrong article, as the old template wrote ("Close a interaction").
WRONG_ARTICLE = re.compile(r"\ba [aeiou]")
#: The old template's summaries of actions named with several words ("Feed back result a ticket").
TEMPLATED = {f"{action.replace('_', ' ').capitalize()} a {kind}"
             for kind, actions in ACTIONS.items() for action in actions if "_" in action}


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def resolve(document: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in obj:
        section, kind, name = obj["$ref"].lstrip("#/").split("/")
        obj = document[section][kind][name]
    return obj


def parameters(item_parameters: list[dict[str, Any]], operation: dict[str, Any]) -> list[dict[str, Any]]:
    return [*item_parameters, *operation.get("parameters", [])]


def expected_errors(path: str, method: str, operation: dict[str, Any], params: list[dict[str, Any]]) -> set[str]:
    """What the contract promises for any operation (api/openapi.py), recomputed from its shape."""
    headers = {p["name"] for p in params if p["in"] == "header"}
    wanted = {"400", "503"}
    if operation.get("security") != []:
        wanted |= {"401", "403"}
    if "{" in path:
        wanted.add("404")
    if method != "get":
        wanted.add("409")
    if "requestBody" in operation:
        wanted |= {"415", "422"}
    if any(p["in"] == "query" for p in params):
        wanted.add("422")
    if "If-Match" in headers:
        wanted.add("412")
    return wanted


def test_every_operation_is_held_to_the_contract(api):
    document = api.get("/openapi.json", as_=None).json
    problems: list[str] = []
    ids: dict[str, str] = {}
    for path, method, operation in operations(document):
        where = f"{method.upper()} {path}"
        op_id = operation.get("operationId")
        if not op_id:
            problems.append(f"{where}: no operationId")
        elif op_id in ids:
            problems.append(f"{where}: operationId {op_id} also used by {ids[op_id]}")
        else:
            ids[op_id] = where
        summary = operation.get("summary") or ""
        if len(summary) < 12 or WRONG_ARTICLE.search(summary) or summary in TEMPLATED:
            problems.append(f"{where}: summary {summary!r} is missing or not written for people")
        params = parameters(document["paths"][path].get("parameters", []), operation)
        responses = operation["responses"]
        for status in sorted(expected_errors(path, method, operation, params) - set(responses)):
            problems.append(f"{where}: error {status} not declared")
        for status, response in responses.items():
            if status.startswith(("4", "5")) or status == "default":
                content = resolve(document, response).get("content", {})
                schema = content.get("application/problem+json", {}).get("schema", {})
                if schema.get("$ref") != "#/components/schemas/Problem":
                    problems.append(f"{where}: {status} is not an RFC 9457 problem")
        if method == "post" and "Idempotency-Key" not in {p["name"] for p in params if p["in"] == "header"}:
            problems.append(f"{where}: Idempotency-Key not declared")
        media = list(operation.get("requestBody", {}).get("content", {}).items())
        media += [m for s, r in responses.items() if s.startswith("2") for m in resolve(document, r).get("content", {}).items()]
        for media_type, content in media:
            if media_type.endswith("json") and "example" not in content and "examples" not in content:
                problems.append(f"{where}: a request or success body has no example")
        if not any(s.startswith("2") or s == "304" for s in responses):
            problems.append(f"{where}: no success response")
    assert len(ids) >= 80  # every operation of the app, not a part of it
    assert not problems, "\n".join(problems)


def validator_for(schema: dict[str, Any], document: dict[str, Any]) -> Any:
    """A JSON Schema 2020-12 validator of ``schema`` with the document's components (for $ref).

    The text rules' patterns exclude lone surrogates (``\\ud800-\\udfff``), which ECMA-262 allows
    and the Rust regex engine refuses to compile; they are dropped from the copy validated here (an
    example is a JSON string, which cannot hold a lone surrogate anyway), every other rule stays."""
    components = json.loads(json.dumps(document["components"]).replace("\\\\ud800-\\\\udfff", ""))
    return jsonschema_rs.Draft202012Validator({**schema, "components": components}, validate_formats=True)


def test_every_example_matches_its_schema(api):
    document = api.get("/openapi.json", as_=None).json
    failures, checked = [], 0
    for path, method, operation in operations(document):
        bodies = [("request", operation.get("requestBody", {}))]
        bodies += [(status, resolve(document, r)) for status, r in operation["responses"].items() if status.startswith("2")]
        for label, body in bodies:
            for media_type, content in body.get("content", {}).items():
                if "example" not in content or "schema" not in content:
                    continue
                validator = validator_for(content["schema"], document)
                errors = [e.message for e in validator.iter_errors(content["example"])]
                checked += 1
                if errors:
                    failures.append(f"{method.upper()} {path} {label} {media_type}: {errors[:3]}")
    assert checked >= 80
    assert not failures, "\n".join(failures)


def test_a_hand_written_example_is_not_replaced_and_a_wrong_one_would_fail(api):
    document = api.get("/openapi.json", as_=None).json
    body = document["paths"]["/tickets/{aggregate_id}/classify"]["post"]["requestBody"]["content"]["application/json"]
    assert body["example"] == {"priority": "urgent", "complexity": "complex", "high_risk": False}
    validator = validator_for(body["schema"], document)
    assert validator.is_valid(body["example"])
    assert not validator.is_valid({**body["example"], "priority": "whenever"})  # not in the vocabulary
    assert not validator.is_valid({"complexity": "complex"})  # priority is required


def test_request_examples_are_accepted_by_the_running_api(api):
    """The examples are not only schema-valid: the creation example of a customer creates one, and the
    ticket example (with that customer) opens a ticket that its classify example classifies."""
    document = api.get("/openapi.json", as_=None).json

    def example(path: str) -> dict[str, Any]:
        return document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["example"]

    customer = api.post("/customers", json=example("/customers"))
    assert customer.status_code == 201, customer.json
    ticket = api.post("/tickets", json={**example("/tickets"), "customer_id": customer.json["id"]})
    assert ticket.status_code == 201, ticket.json
    classified = api.post(f"/tickets/{ticket.json['id']}/classify", as_="lead",
                          json=example("/tickets/{aggregate_id}/classify"))
    assert classified.status_code == 200, classified.json
    assert classified.json["priority"] == example("/tickets/{aggregate_id}/classify")["priority"]


def test_vocabularies_are_enums_read_from_the_policy_data(api, ledger):
    document = api.get("/openapi.json", as_=None).json
    schemas = document["components"]["schemas"]
    versions = PolicyBook.load().versions(ledger.policy_name)

    def values(key: str) -> list[Any]:
        out: list[Any] = []
        for policy in versions:
            out += [v for v in policy.vocabulary(key).values if v not in out]
        return out

    assert schemas["TicketClassify"]["properties"]["priority"]["enum"] == values("priority")
    assert schemas["TicketClassify"]["properties"]["complexity"]["enum"] == values("complexity")
    assert schemas["TicketCreate"]["properties"]["channel"]["enum"] == values("channel")
    assert schemas["CustomerCreate"]["properties"]["tier"]["enum"] == values("customer_tier")
    assert schemas["ComplaintClassify"]["properties"]["level"]["enum"] == values("complaint_level")
    listing = {p["name"]: p for p in document["paths"]["/views/tickets"]["get"]["parameters"] if p["in"] == "query"}
    assert listing["status"]["schema"]["items"]["enum"] == sorted(TicketStatus.ALL)
    assert listing["priority"]["schema"]["items"]["enum"] == values("priority")
    # Every field that names a vocabulary found it (a typo, or one missing from the policy data, fails here).
    unresolved = [f"{name}.{prop}" for name, schema in schemas.items()
                  for prop, sub in schema.get("properties", {}).items()
                  for s in (sub, sub.get("items", {})) if "x-vocabulary" in s and "enum" not in s]
    assert not unresolved, unresolved


def test_headers_statuses_and_security_are_declared(api):
    document = api.get("/openapi.json", as_=None).json
    classify = document["paths"]["/tickets/{aggregate_id}/classify"]["post"]
    headers = {p["name"] for p in classify["parameters"] if p["in"] == "header"}
    assert {"If-Match", "Idempotency-Key", "X-Access-Reason"} <= headers
    assert {"412", "409", "415", "422"} <= set(classify["responses"])
    views = document["paths"]["/views/tickets"]["get"]
    assert "If-None-Match" in {p["name"] for p in views["parameters"] if p["in"] == "header"}
    assert "304" in views["responses"] and "Link" in views["responses"]["200"]["headers"]
    assert document["components"]["securitySchemes"]["bearer"] == {
        **document["components"]["securitySchemes"]["bearer"], "type": "http", "scheme": "bearer"}
    assert document["security"] == [{"bearer": []}]
    checkpoint = document["paths"]["/log/checkpoint"]["get"]
    assert {} in checkpoint["security"]  # public: a token is optional


def test_a_json_endpoint_answers_415_for_another_content_type(api, customer_id):
    """What the README and the document promise: a body that is not JSON is 415, not 422."""
    response = api.post("/tickets", data=f'customer_id={customer_id}&channel=phone',
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415 and response.mimetype == "application/problem+json"
    assert "application/json" in response.json["detail"]
    response = api.post("/tickets", data='{"customer_id": "%s", "channel": "phone"}' % customer_id,
                        headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
