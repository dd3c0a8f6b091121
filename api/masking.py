"""Personal data in responses: masked by default, disclosed only with a permission and a reason.

Every field of every response schema has a data grade (``domain/permissions.toml``,
``[data_grades]``), shown in the OpenAPI document as ``x-data-grade``. Fields of grade *core* are
personal data of a data subject and must be :class:`PersonalData` fields: they are masked when
serialised —

- name ``张三丰`` → ``张**``; phone ``13812345678`` → ``138****5678``; email ``alice@x.com`` →
  ``a***@x.com``; address → its first few characters and ``****``; anything else (free text a
  customer wrote) → ``****``;
- ``None`` (a value destroyed by crypto-shredding) stays ``None``, and a destroyed part keeps its
  ``"destroyed": true``

— unless the request states why in ``X-Access-Reason`` and the caller holds ``personal.unmask``.
Then the values are shown, and after the response is built every disclosed subject and field is
recorded in the security audit log (:mod:`services.access_log`) before it is sent; if recording
fails the response becomes a 500 and nothing is disclosed.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from apispec import APISpec
from flask import Response, current_app, g, request
from marshmallow import fields

from domain.context import Context
from domain.permissions import AccessPolicy, AccessPolicyError
from services.access_log import AccessLog
from services.disclosure import Disclosure

REASON_HEADER = "X-Access-Reason"


def current_disclosure() -> Disclosure:
    return g.get("disclosure") or Disclosure()


class PersonalData(fields.Dict):
    """A core-grade field. ``subject_attr`` names the sibling attribute holding the data subject's
    id, for flat dicts (a customer's ``contact``); without it the value is an event's personal
    part, ``{"subject": id, "fields": {...}}``."""

    def __init__(self, subject_attr: str | None = None, **kwargs: Any):
        metadata = {"x-data-grade": "core", **kwargs.pop("metadata", {})}
        super().__init__(keys=fields.String(), allow_none=True, metadata=metadata, **kwargs)
        self.subject_attr = subject_attr

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if value is None:
            return None
        disclosure = current_disclosure()
        if self.subject_attr is not None:
            subject = obj.get(self.subject_attr) if isinstance(obj, dict) else getattr(obj, self.subject_attr)
            return disclosure.fields(subject, dict(value))
        return disclosure.part(dict(value))


def record_disclosures(response: Response) -> Response:
    """after_request: write what this request disclosed to the security audit log (or fail)."""
    disclosure: Disclosure | None = g.pop("disclosure", None)
    if disclosure is None or not disclosure.disclosed or response.status_code >= 400:
        return response
    caller = g.caller
    ctx = Context(actor_id=caller.actor_id, actor_role=caller.role, occurred_at=datetime.now(timezone.utc),
                  request_id=g.request_id, reason=disclosure.reason, client_request_id=g.get("client_request_id"))
    access_log: AccessLog = current_app.extensions["caseledger.access_log"]
    access_log.record(ctx, disclosure.disclosed, resource=f"{request.method} {request.full_path.rstrip('?')}")
    return response


# -- data grades in the OpenAPI document ----------------------------------------------------------------
def grade_responses(spec: APISpec, policy: AccessPolicy) -> None:
    """Mark every property of every response schema with its ``x-data-grade``; refuse to start
    when a field has no grade, or a core field is not a :class:`PersonalData` field (unmasked)."""
    schemas = spec.components.schemas
    for name in _response_schema_names(spec):
        for field, prop in (schemas[name].get("properties") or {}).items():
            grade = policy.grade(field)
            declared = prop.get("x-data-grade")
            if grade == "core" and declared != "core":
                raise AccessPolicyError(f"{name}.{field} is personal data (core) but not a masked PersonalData field")
            if declared is not None and declared != grade:
                raise AccessPolicyError(f"{name}.{field} is graded {declared} in code but {grade} in the policy")
            prop["x-data-grade"] = grade


def _response_schema_names(spec: APISpec) -> set[str]:
    document = spec.to_dict()
    components = document.get("components", {})
    pending: list[Any] = []
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict):
                pending.extend((operation.get("responses") or {}).values())
    pending.extend((components.get("responses") or {}).values())
    found: set[str] = set()
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/components/schemas/"):
                name = ref.rsplit("/", 1)[1]
                if name not in found:
                    found.add(name)
                    pending.append(components["schemas"][name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found
