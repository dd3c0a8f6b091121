"""Masking by data grade: personal data masked by default, destroyed data shown as null, every
response field graded in the OpenAPI document."""

from __future__ import annotations

import pytest

from services.disclosure import Disclosure, mask, mask_email, mask_name, mask_phone
from domain.permissions import AccessPolicy

REASON = {"X-Access-Reason": "客户来电要求核实联系方式"}


@pytest.mark.parametrize("masker, value, masked", [
    (mask_phone, "13812345678", "138****5678"),
    (mask_phone, "+86 138-1234-5678", "+86 1****-****-5678"),
    (mask_phone, "12345", "****45"),
    (mask_name, "张三", "张*"),
    (mask_name, "欧阳娜娜", "欧***"),
    (mask_name, "李", "*"),
    (mask_email, "alice@x.com", "a***@x.com"),
    (mask_email, "not-an-email", "****"),
])
def test_maskers(masker, value, masked):
    assert masker(value) == masked


def test_free_text_and_destroyed_values():
    assert mask("summary", "宽带断了，已经三天") == "****"
    assert mask("address", "北京市朝阳区建国路88号") == "北京市朝****"
    assert mask("phone", None) is None and mask("name", 42) == "****"
    disclosure = Disclosure("why")
    assert disclosure.fields("c1", {"name": None, "phone": "1"}) == {"name": None, "phone": "1"}
    assert disclosure.disclosed == {"c1": {"phone"}}  # a destroyed value discloses nothing


def test_customer_contact_masked_unless_a_reason_is_given(api, customer_id, contact):
    phone, name = contact
    masked = api.get(f"/customers/{customer_id}").json["contact"]
    assert masked == {"name": "赵*", "phone": "138****2222"}
    shown = api.get(f"/customers/{customer_id}", headers=REASON)
    assert shown.json["contact"] == {"name": name, "phone": phone}
    log = api.get(f"/access-events?subject={customer_id}", as_="compliance").json["items"]
    assert len(log) == 1
    entry = log[0]
    assert (entry["actor_id"], entry["actor_role"], entry["fields"], entry["reason"]) == (
        "agent-li", "agent", ["name", "phone"], REASON["X-Access-Reason"])
    assert entry["request_id"] == shown.headers["X-Request-Id"] and entry["resource"].endswith(customer_id)
    assert api.get("/access-events", as_="agent").status_code == 403


def test_reasons_are_checked(api, customer_id):
    assert api.get(f"/customers/{customer_id}", headers={"X-Access-Reason": " "}).status_code == 400
    assert api.get(f"/customers/{customer_id}", headers={"X-Access-Reason": "x" * 501}).status_code == 400
    refused = api.get(f"/customers/{customer_id}", as_="auditor", headers=REASON)
    assert refused.status_code == 403 and "unmasked" in refused.json["detail"]
    assert api.get("/access-events", as_="auditor").json["items"] == []


def test_destroyed_personal_data_reads_as_null(api, ledger, customer_id):
    api.post(f"/customers/{customer_id}/update-contact", json={"contact": {"email": "zhao6@example.com"}})
    ledger.subject_keys.destroy(customer_id, disposition_id="test", destroyed_at="2025-09-02T00:00:00+00:00")
    for headers in (None, REASON):
        customer = api.get(f"/customers/{customer_id}", headers=headers)
        assert customer.status_code == 200 and customer.json["contact"] == {"name": None, "phone": None, "email": None}
        events = api.get(f"/customers/{customer_id}/events", headers=headers).json["items"]
        assert events[0]["personal"]["fields"] == {"name": None, "phone": None}
        assert events[0]["personal"]["destroyed"] is True
    assert api.get("/access-events", as_="auditor").json["items"] == []  # nothing was disclosed


def test_every_response_field_has_a_data_grade(api, ledger):
    spec = api.get("/openapi.json", as_=None).json
    vocabulary = set(ledger.policies.versions(ledger.policy_name)[-1].vocabulary("data_grade").values)
    schemas = spec["components"]["schemas"]
    names = _referenced([op.get("responses") for ops in spec["paths"].values() for op in ops.values()
                         if isinstance(op, dict)] + list(spec["components"].get("responses", {}).values()), schemas)
    assert {"CustomerState", "EventPage", "Event", "TicketPage", "AccessPage", "Problem"} <= names
    ungraded = [f"{name}.{field}" for name in names for field, prop in schemas[name].get("properties", {}).items()
                if prop.get("x-data-grade") not in vocabulary]
    assert not ungraded
    assert schemas["Event"]["properties"]["personal"]["x-data-grade"] == "core"
    assert schemas["CustomerState"]["properties"]["contact"]["x-data-grade"] == "core"
    assert schemas["TicketState"]["properties"]["customer_id"]["x-data-grade"] == "important"
    assert set(AccessPolicy.load().grades.values()) <= vocabulary


def _referenced(nodes: list, schemas: dict) -> set[str]:
    """Names of the component schemas reachable from these nodes of the OpenAPI document."""
    found: set[str] = set()
    while nodes:
        node = nodes.pop()
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            name = ref.rsplit("/", 1)[-1]
            if ref.startswith("#/components/schemas/") and name not in found:
                found.add(name)
                nodes.append(schemas[name])
            nodes.extend(node.values())
        elif isinstance(node, list):
            nodes.extend(node)
    return found
