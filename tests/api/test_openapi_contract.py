"""The served OpenAPI document is a contract: every operation, whoever added it, is held to it.

Each operation must have an operationId (unique), a summary written for people, its error
responses declared as RFC 9457 problems, the headers it reads, and an example for its request body
and success response that validates against the schema. Vocabularies are enums taken from the
policy data. A new endpoint that misses any of this fails here, naming itself.
"""

from __future__ import annotations

import inspect
import json
import re
import types
from typing import Any, Callable, Iterator

import jsonschema_rs

from domain.policy import PolicyBook
from ledger.kinds import ACTIONS
from domain.ticket import TicketStatus

METHODS = ("get", "post", "put", "patch", "delete")
#: A wrong article, as the old template wrote ("Close a interaction").
WRONG_ARTICLE = re.compile(r"\ba [aeiou]")
#: The old template's summaries of actions named with several words ("Feed back result a ticket").
TEMPLATED = {f"{action.replace('_', ' ').capitalize()} {article} {kind}"
             for kind, actions in ACTIONS.items() for action in actions if "_" in action for article in ("a", "an")}


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
    if "If-None-Match" in headers:
        wanted.add("304")
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


#: Names and strings in a function's code that mean it reads a conditional header (``request.if_match``,
#: ``request.headers.get("If-None-Match")``…).
CONDITIONAL_HEADERS = {"if_match": "If-Match", "If-Match": "If-Match",
                       "if_none_match": "If-None-Match", "If-None-Match": "If-None-Match"}


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def headers_read(view: Callable[..., Any]) -> set[str]:
    """The conditional headers a view reads: in its own code, or in any function of ``api.*`` it calls,
    however deep (``api.resources.expected_version`` reads If-Match, ``api.read_models.conditional``
    If-None-Match). Bytecode rather than source text, so a decorator's description that merely mentions
    a header does not count, and a helper such as ``_act`` that calls ``expected_version`` does."""
    found: set[str] = set()
    seen: set[Any] = set()
    todo = [inspect.unwrap(view)]
    while todo:
        function = todo.pop()
        if function in seen:
            continue
        seen.add(function)
        referenced = []
        for code in _code_objects(function.__code__):
            found |= {CONDITIONAL_HEADERS[n] for n in code.co_names if n in CONDITIONAL_HEADERS}
            found |= {CONDITIONAL_HEADERS[c] for c in code.co_consts if isinstance(c, str) and c in CONDITIONAL_HEADERS}
            referenced += [function.__globals__.get(n) for n in code.co_names]
        for cell in function.__closure__ or ():
            try:
                referenced.append(cell.cell_contents)
            except ValueError:  # an empty cell
                pass
        todo += [inspect.unwrap(f) for f in referenced
                 if inspect.isfunction(f) and (f.__module__ or "").startswith("api.")]
    return found


def openapi_path(rule: str) -> str:
    """``/audits/<uuid:audit_id>`` → ``/audits/{audit_id}``."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def test_every_view_that_reads_a_conditional_header_declares_it(app, api):
    """A view that reads If-Match (``expected_version()``) or If-None-Match (``conditional(...)``) must be
    marked ``@reads_headers(...)``, else its 412 or 304 is missing from the contract. Checked on the
    served document, for every operation, by following what each view's code calls."""
    document = api.get("/openapi.json", as_=None).json
    missing, readers = [], 0
    for rule in app.url_map.iter_rules():
        item = document["paths"].get(openapi_path(rule.rule))
        if item is None:
            continue
        read = headers_read(app.view_functions[rule.endpoint])
        readers += bool(read)
        for method in sorted((rule.methods or set()) & {m.upper() for m in METHODS}):
            operation = item.get(method.lower())
            if operation is None:
                continue
            params = parameters(item.get("parameters", []), operation)
            declared = {p["name"] for p in params if p["in"] == "header"}
            for header in sorted(read - declared):
                missing.append(f"{method} {rule.rule} ({rule.endpoint}) reads {header}: mark it @reads_headers")
            statuses = {"If-Match": "412", "If-None-Match": "304"}
            missing += [f"{method} {rule.rule}: {statuses[h]} not declared" for h in sorted(read)
                        if statuses[h] not in operation["responses"]]
    assert readers >= 20  # the walk finds the readers at all (every record action reads If-Match)
    assert not missing, "\n".join(missing)


def test_the_header_walk_follows_helpers_and_ignores_mentions():
    """headers_read itself: a helper's read counts, a string that merely mentions the header in a longer
    text does not, and a view that reads nothing reads nothing."""
    from api.resources import expected_version

    def helper() -> Any:
        return expected_version()

    def view_via_helper() -> Any:
        return helper()

    def view_that_only_mentions() -> str:
        return "send If-Match with the ETag"

    assert headers_read(expected_version) == {"If-Match"}
    assert headers_read(view_that_only_mentions) == set()
    # helper is a closure variable here, not an api.* module global: the walk follows api.* functions only,
    # so wrap it the way a blueprint module would have it (same module as expected_version's caller).
    helper.__module__ = "api.test_probe"
    view_via_helper.__module__ = "api.test_probe"
    assert headers_read(view_via_helper) == {"If-Match"}


def test_stand_in_summaries_are_only_for_the_older_modules(app):
    """New modules write their own summaries on the endpoint; api.openapi.SUMMARIES only fills in for
    the older ones (api.log, api.retention), and each of its entries is still an endpoint of the app."""
    from api.openapi import SUMMARIES

    modules = {endpoint: inspect.unwrap(app.view_functions[endpoint]).__module__
               for endpoint in SUMMARIES if endpoint in app.view_functions}
    assert set(modules) == set(SUMMARIES)  # no stale entry
    assert set(modules.values()) <= {"api.log", "api.retention"}, modules
