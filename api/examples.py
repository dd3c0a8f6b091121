"""Examples for the OpenAPI document: one per request body and per success response.

Two sources, in this order:

1. :data:`SCHEMA_EXAMPLES`, written by hand for a component schema (by its name in the
   document): use it where a generated example would not show how the endpoint is meant to be used.
2. Generated from the finished JSON Schema (enums already filled from the policy data): the first
   value of an enum, :data:`FIELD_EXAMPLES` by property name, else a value of the property's type
   and format within its bounds.

An endpoint may also give its own (``@blp.response(..., example=...)`` or
``@blp.arguments(..., example=...)``); it is kept. ``tests/api/test_openapi_contract.py`` checks
every example against its schema, so a hand-written one that drifts from the contract fails there.
"""

from __future__ import annotations

import copy
from typing import Any

CUSTOMER = "0b7c5c6e-3c55-4f0e-9a57-4f8c2f0f6a11"
TICKET = "6f1d2a53-2b8e-4d7c-8f3e-1f2b9c8a7e42"
MOMENT = "2025-09-01T09:30:00+08:00"

#: Values by property name, for properties without an enum.
FIELD_EXAMPLES: dict[str, Any] = {
    "actor_id": "agent-li", "agent_id": "agent-li", "handler": "agent-zhao", "owner": "agent-li",
    "first_contact_owner": "agent-li", "first_contact_agent": "agent-li", "team": "hotline",
    "queue": "broadband", "policy_ref": "sop-2025@1", "policy": "sop-2025@1", "actor_role": "agent",
    "name": "赵六", "phone": "138 1111 2222", "email": "zhao.liu@example.com", "address": "上海市浦东新区 1 号",
    "reason": "customer asked for it on the phone", "authority": "Shanghai court order (2025) 12",
    "external_ref": "CRM-20250901-0042", "summary": "broadband down since this morning",
    "content": "broadband down since this morning", "description": "charged twice for September",
    "resolution": "line card replaced; connection stable for 2 hours", "message": "we are on it",
    "note": "checked with the customer", "comment": "fast and friendly", "category": "process",
    "analysis": "billing run repeated after a timeout", "reference": "invoice 2025-09-001",
    "details": "refund of the second charge", "amount": 59.0, "csat": 5, "nps": 9, "score": 5,
    "resource": "GET /customers/0b7c5c6e-3c55-4f0e-9a57-4f8c2f0f6a11", "request_id": "2190cecf-a4d6",
    "cursor": None, "next_cursor": None, "next_after": None, "after": 0, "limit": 50,
    "topic": "domain.ticket:Ticket.Classified", "type": "Classified",
}

#: Whole examples, by component schema name.
SCHEMA_EXAMPLES: dict[str, Any] = {
    "CustomerCreate": {"kind": "individual", "tier": "vip",
                       "contact": {"name": "赵六", "phone": "13811112222"}, "consents": {"survey": True}},
    "TicketCreate": {"customer_id": CUSTOMER, "channel": "phone", "summary": "broadband down since this morning"},
    "TicketClassify": {"priority": "urgent", "complexity": "complex", "high_risk": False},
    "TicketAssign": {"handler": "agent-zhao", "team": "broadband"},
    "TicketReview": {"approved": True, "note": "checked the line test myself"},
    "TicketRecordAcceptance": {"accepted": True, "comment": "works again"},
    "ComplaintEscalate": {"to_rung": "team_lead", "reason": "second call about the same charge"},
    "TicketState": {"id": TICKET, "version": 3, "status": "assigned", "policy_ref": "sop-2025@1",
                    "created_on": "2025-09-01T01:30:00+00:00", "modified_on": "2025-09-01T01:42:00+00:00",
                    "last_occurred_at": "2025-09-01T09:42:00+08:00", "customer_id": CUSTOMER, "channel": "phone",
                    "interaction_id": None, "first_contact_owner": "agent-li", "priority": "urgent",
                    "complexity": "complex", "high_risk": False, "review_required": True, "handler": "agent-zhao",
                    "team": "broadband", "first_responded": False, "resolved_by": None, "reviewed_by": None,
                    "clock_paused": False, "rework_count": 0, "reopen_count": 0, "archived_by": None},
}

_FORMATS = {"uuid": CUSTOMER, "date-time": MOMENT, "date": "2025-09-01", "email": "zhao.liu@example.com",
            "uri": "https://caseledger.dev/problems/404"}


def example_of(schema: dict[str, Any], components: dict[str, Any], name: str | None = None,
               depth: int = 0) -> Any:
    """An example value of ``schema`` (``name``: the property it is the value of)."""
    ref = schema.get("$ref")
    if ref:
        target = ref.rsplit("/", 1)[-1]
        if target in SCHEMA_EXAMPLES:
            return copy.deepcopy(SCHEMA_EXAMPLES[target])
        return example_of(components.get(target, {}), components, name, depth + 1)
    if "example" in schema:
        return copy.deepcopy(schema["example"])
    if schema.get("examples"):
        return copy.deepcopy(schema["examples"][0])
    enum = [v for v in schema.get("enum", []) if v is not None]
    if enum:
        return enum[0]
    kinds = schema.get("type", "object" if "properties" in schema else None)
    kinds = [kinds] if isinstance(kinds, str) or kinds is None else list(kinds)
    kind = next((k for k in kinds if k != "null"), None)
    if name in FIELD_EXAMPLES and _fits(FIELD_EXAMPLES[name], kind, kinds):
        return FIELD_EXAMPLES[name]
    if kind == "object" or kind is None and "additionalProperties" in schema:
        if depth > 6:
            return {}
        properties = schema.get("properties", {})
        if properties:
            return {key: example_of(sub, components, key, depth + 1) for key, sub in properties.items()
                    if not sub.get("readOnly")}
        extra = schema.get("additionalProperties")
        return {"key": example_of(extra, components, None, depth + 1)} if isinstance(extra, dict) and extra else {}
    if kind == "array":
        return [] if depth > 6 else [example_of(schema.get("items", {}), components, name, depth + 1)]
    if kind == "string":
        return _string(schema, name)
    if kind == "integer":
        return max(1, schema.get("minimum", 1)) if schema.get("maximum", 1) >= 1 else schema.get("minimum", 0)
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return False
    return None if "null" in kinds else {}


def _fits(value: Any, kind: str | None, kinds: list[Any]) -> bool:
    if value is None:
        return "null" in kinds
    wanted = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict, "array": list}
    return kind is None or isinstance(value, wanted.get(kind, object))


def _string(schema: dict[str, Any], name: str | None) -> str:
    value = _FORMATS.get(schema.get("format", ""))
    if value is None:
        value = name.replace("_", " ") if name else "example"
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    value = value.ljust(low, "x")
    return value[:high] if high else value


def add_examples(document: dict[str, Any]) -> None:
    """An ``example`` on each JSON request body and success response that has none (other media
    types — signed notes, bundles, NDJSON — are shown by their endpoint if at all)."""
    components = document.get("components", {}).get("schemas", {})
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            media = list((operation.get("requestBody") or {}).get("content", {}).items())
            for status, response in operation.get("responses", {}).items():
                if str(status).startswith("2") and isinstance(response, dict):
                    media.extend(response.get("content", {}).items())
            for media_type, content in media:
                if (media_type.endswith("json") and "schema" in content and "example" not in content
                        and "examples" not in content):
                    content["example"] = example_of(content["schema"], components)
