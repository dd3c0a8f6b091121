"""The API contract: request and response schemas. Types and shapes only — which values are
allowed (channels, tiers, priorities…) is policy data, checked by the domain with its clause."""

from __future__ import annotations

from typing import Any, Callable

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from api.masking import PersonalData
from domain import text

#: Largest value a position or version can have (the databases' BIGINT); larger ones are 422, not 500.
BIGINT = text.BIGINT


class CleanText(validate.Regexp):
    """The text rules of :mod:`domain.text` as a validator. A ``Regexp``, so the OpenAPI document
    publishes them as the field's ``pattern``; the error names the first bad character."""

    def __init__(self, *, multiline: bool):
        super().__init__(text.FREE_TEXT_PATTERN if multiline else text.NAME_PATTERN)
        self.multiline = multiline

    def __call__(self, value: str) -> str:
        problem = text.text_problem(value, multiline=self.multiline)
        if problem:
            raise ValidationError(problem)
        return value


#: Free text may hold newlines, carriage returns and tabs, never NUL, other controls or lone surrogates.
NO_NUL = FREE_TEXT = CleanText(multiline=True)
#: Names (channels, actors, tiers, ids, query parameters…): no control characters at all.
PRINTABLE = CleanText(multiline=False)

Text = lambda n=2000, **kw: fields.String(validate=[validate.Length(min=1, max=n), FREE_TEXT], **kw)  # noqa: E731
Name = lambda **kw: fields.String(validate=[validate.Length(min=1, max=64), PRINTABLE], **kw)  # noqa: E731
#: An integer that fits the databases; narrower ranges (scores, levels) are policy data.
Integer = lambda **kw: fields.Integer(strict=True, validate=validate.Range(-BIGINT, BIGINT), **kw)  # noqa: E731


def Vocab(vocabulary: str, field: Callable[..., fields.Field] = Name, **kw: Any) -> fields.Field:  # noqa: N802
    """A value from a policy vocabulary (``[vocabularies.<vocabulary>]`` in ``domain/policies``):
    the OpenAPI document lists its values as ``enum`` (``api.openapi``); the domain checks it."""
    metadata = {**kw.pop("metadata", {}), "vocabulary": vocabulary}
    return field(metadata=metadata, **kw)


class Strict(Schema):
    """The base of every request schema (bodies, query parameters, import lines).

    Unknown fields are errors (marshmallow's default, stated here because it is the contract; for
    query parameters the routes say ``unknown=RAISE`` too, as webargs would otherwise drop them).
    And whatever a field's own validators say, every value loaded obeys :mod:`domain.text` — text
    without NUL, lone surrogates or stray control characters, integers within BIGINT, times within
    the years it allows — so that no field, however declared, lets a value through that would fail
    later in a database or in date arithmetic."""

    class Meta:
        unknown = RAISE

    @validates_schema(skip_on_field_errors=False)
    def _boundary_values(self, data: dict[str, Any], **_: Any) -> None:
        errors: dict[str, Any] = {}
        for name, value in data.items():
            field = self.fields.get(name)
            key = (field.data_key if field is not None else None) or name
            for path, problem in text.value_problems(value):
                node = errors
                for step in (key, *path)[:-1]:
                    node = node.setdefault(step, {})
                node.setdefault((key, *path)[-1], []).append(problem)
        if errors:
            raise ValidationError(errors)


class ActionSchema(Strict):
    reason = Text(500, load_default=None, metadata={"description": "why; required by some rules"})


class ContactSchema(Strict):
    name = Text(200)
    phone = fields.String(validate=validate.Regexp(r"^\+?[0-9 ()-]{3,32}$"))
    email = fields.Email(validate=validate.Length(max=254))  # RFC 5321's longest path
    address = Text(500)


# -- creation -------------------------------------------------------------------------------
class CustomerCreate(Strict):
    kind = Vocab("customer_kind", required=True)
    tier = Vocab("customer_tier", required=True)
    contact = fields.Nested(ContactSchema, load_default=dict)
    consents = fields.Dict(keys=Name(), values=fields.Boolean(), load_default=dict)


class InteractionCreate(Strict):
    channel = Vocab("channel", required=True)
    direction = Vocab("direction", load_default="inbound")
    customer_id = fields.UUID(load_default=None)
    content = Text(10000, load_default=None)
    external_ref = Text(200, load_default=None, metadata={"description": "source system id; makes imports idempotent"})
    agent_id = Name(load_default=None, metadata={"description": "registers it now, with you as its first-contact "
                                                               "agent: only your own actor id is accepted"})
    queue = Name(load_default=None, metadata={"description": "routes it now (needs agent_id)"})


class InteractionImportLine(InteractionCreate):
    occurred_at = fields.AwareDateTime(load_default=None, metadata={
        "description": f"when the contact happened (years {text.MIN_YEAR}–{text.MAX_YEAR})"})


class ImportReport(Schema):
    imported = fields.Integer()
    skipped = fields.Integer()
    lines = fields.Integer()


class TicketCreate(Strict):
    customer_id = fields.UUID(required=True)
    channel = Vocab("channel", required=True)
    summary = Text(10000, load_default=None)
    interaction_id = fields.UUID(load_default=None)


class ComplaintCreate(Strict):
    customer_id = fields.UUID(required=True)
    channel = Vocab("channel", required=True)
    description = Text(10000, load_default=None)
    ticket_id = fields.UUID(load_default=None)


class FeedbackCreate(Strict):
    kind = Vocab("feedback_kind", required=True)
    customer_id = fields.UUID(required=True)
    channel = Vocab("channel", required=True)
    content = Text(10000, load_default=None)
    ticket_id = fields.UUID(load_default=None)


class SurveyCreate(Strict):
    ticket_id = fields.UUID(required=True)
    csat = Integer(load_default=None)
    nps = Integer(load_default=None)
    comment = Text(2000, load_default=None)


# -- actions on existing aggregates: (kind, action) -> schema ------------------------------------
def _action(**fields_: fields.Field) -> type[ActionSchema]:
    return type("Action", (ActionSchema,), dict(fields_))


OptionalText = lambda: Text(10000, load_default=None)  # noqa: E731

ACTION_SCHEMAS: dict[str, dict[str, type[Schema]]] = {
    "customer": {
        "change_tier": _action(tier=Vocab("customer_tier", required=True)),
        "update_contact": _action(contact=fields.Nested(ContactSchema, required=True)),
        "set_consents": _action(consents=fields.Dict(keys=Name(), values=fields.Boolean(), required=True)),
    },
    "interaction": {
        "register": _action(agent_id=Name(load_default=None, metadata={
            "description": "the first-contact agent: you (the default); naming anyone else is refused"})),
        "route": _action(queue=Name(required=True)),
        "close": _action(resolved_on_first_contact=fields.Boolean(required=True)),
    },
    "ticket": {
        "classify": _action(priority=Vocab("priority", required=True), complexity=Vocab("complexity", required=True),
                            high_risk=fields.Boolean(load_default=False),
                            service_type=Vocab("service_type", load_default=None)),
        "assign": _action(handler=Name(required=True), team=Name(load_default=None)),
        "respond_first": _action(message=OptionalText()),
        "start_work": _action(),
        "pause_clock": _action(),
        "resume_clock": _action(),
        "resolve": _action(resolution=OptionalText()),
        "review": _action(approved=fields.Boolean(required=True), note=OptionalText()),
        "feed_back_result": _action(channel=Vocab("channel", required=True)),
        "record_acceptance": _action(accepted=fields.Boolean(required=True), comment=OptionalText()),
        "close": _action(),
        "reopen": _action(),
        "archive": _action(),
        "update_progress": _action(channel=Vocab("channel", required=True), message=OptionalText()),
    },
    "complaint": {
        "classify": _action(complaint_type=Vocab("complaint_type", required=True),
                            level=Vocab("complaint_level", Integer, required=True),
                            service_type=Vocab("service_type", load_default=None)),
        "respond_first": _action(message=OptionalText()),
        "reassign": _action(handler=Name(required=True)),
        "start_investigation": _action(),
        "add_evidence": _action(kind=Name(required=True), description=OptionalText(), reference=Text(500, load_default=None)),
        "escalate": _action(to_rung=Vocab("escalation_rung", required=True)),
        "decide_remedy": _action(kind=Vocab("remedy_kind", required=True), details=OptionalText(),
                                 amount=fields.Decimal(as_string=True, places=2, load_default=None)),
        "notify_customer": _action(channel=Vocab("channel", required=True)),
        "record_evaluation": _action(satisfied=fields.Boolean(required=True),
                                     score=Integer(load_default=None), comment=OptionalText()),
        "archive": _action(),
        "record_root_cause": _action(category=Name(required=True), analysis=OptionalText()),
    },
    "feedback": {
        "respond": _action(note=OptionalText()),
        "reply": _action(note=OptionalText()),
    },
}


# -- responses ------------------------------------------------------------------------------
class StateSchema(Schema):
    id = fields.UUID()
    version = fields.Integer()
    status = fields.String()
    policy_ref = fields.String(metadata={"description": "the policy version governing this case"})
    created_on = fields.DateTime()
    modified_on = fields.DateTime()
    last_occurred_at = fields.String(metadata={"description": "business time of the latest event"})


class CustomerState(StateSchema):
    kind = fields.String()
    tier = fields.String()
    consents = fields.Dict(keys=fields.String(), values=fields.Boolean())
    contact = PersonalData(subject_attr="id", metadata={"description": "current contact details (personal data: "
                                                                       "masked unless X-Access-Reason)"})


class InteractionState(StateSchema):
    channel = fields.String()
    direction = fields.String()
    customer_id = fields.String(allow_none=True)
    external_ref = fields.String(allow_none=True)
    first_contact_agent = fields.String(allow_none=True)
    queue = fields.String(allow_none=True)
    ticket_ids = fields.List(fields.String())
    resolved_on_first_contact = fields.Boolean(allow_none=True)


class TicketState(StateSchema):
    customer_id = fields.String()
    channel = fields.String()
    interaction_id = fields.String(allow_none=True)
    first_contact_owner = fields.String()
    priority = fields.String(allow_none=True)
    complexity = fields.String(allow_none=True)
    high_risk = fields.Boolean()
    review_required = fields.Boolean()
    handler = fields.String(allow_none=True)
    team = fields.String(allow_none=True)
    first_responded = fields.Boolean()
    resolved_by = fields.String(allow_none=True)
    reviewed_by = fields.String(allow_none=True)
    clock_paused = fields.Boolean()
    rework_count = fields.Integer()
    reopen_count = fields.Integer()
    archived_by = fields.String(allow_none=True)


class ComplaintState(StateSchema):
    customer_id = fields.String()
    channel = fields.String()
    ticket_id = fields.String(allow_none=True)
    handler = fields.String()
    rung = fields.String()
    complaint_type = fields.String(allow_none=True)
    level = fields.Integer(allow_none=True)
    evidence_count = fields.Integer()
    escalations = fields.Integer()
    remedy_kind = fields.String(allow_none=True)
    satisfied = fields.Boolean(allow_none=True)
    root_cause_recorded = fields.Boolean()


class FeedbackState(StateSchema):
    kind = fields.String()
    customer_id = fields.String()
    channel = fields.String()
    ticket_id = fields.String(allow_none=True)
    complaint_id = fields.String(allow_none=True)


class SurveyState(StateSchema):
    ticket_id = fields.String()
    customer_id = fields.String()
    csat = fields.Integer(allow_none=True)
    nps = fields.Integer(allow_none=True)


STATE_SCHEMAS: dict[str, type[Schema]] = {
    "customer": CustomerState, "interaction": InteractionState, "ticket": TicketState,
    "complaint": ComplaintState, "feedback": FeedbackState, "survey": SurveyState,
}


class EventSchema(Schema):
    aggregate_id = fields.String()
    version = fields.Integer()
    type = fields.String()
    topic = fields.String()
    recorded_at = fields.String()
    meta = fields.Dict()
    data = fields.Dict()
    personal = PersonalData(metadata={"description": "{subject, fields}: personal data, masked unless X-Access-Reason"})


#: The next page of a list (``api.pagination``), also sent as ``Link: <…>; rel="next"``.
NextCursor = lambda: fields.String(allow_none=True, metadata={  # noqa: E731
    "description": "pass as ?cursor= for the next page (null: this is the last page); the Link header has the URL"})
#: The position of the next page of the lists that paged with ?after= before cursors (deprecated).
NextAfter = lambda: fields.Integer(allow_none=True, metadata={  # noqa: E731
    "description": "deprecated: use next_cursor", "deprecated": True})
#: The page cursor of a query.
Cursor = lambda: fields.String(load_default=None, validate=[validate.Length(max=200), PRINTABLE],  # noqa: E731
                               metadata={"description": "next_cursor of the previous page"})


class EventPage(Schema):
    items = fields.List(fields.Nested(EventSchema))
    next_cursor = NextCursor()
    next_after = NextAfter()


class LogEvent(EventSchema):
    position = fields.Integer(metadata={"description": "position in the ledger's log (gaps are possible)"})


class LogPage(Schema):
    items = fields.List(fields.Nested(LogEvent))
    next_cursor = NextCursor()
    next_after = NextAfter()


class EventQuery(Strict):
    cursor = Cursor()
    after = fields.Integer(load_default=0, validate=validate.Range(min=0, max=BIGINT - 1),
                           metadata={"description": "deprecated: use cursor", "deprecated": True})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


def _name_action_schemas() -> None:
    """Give each action schema its own name in the OpenAPI document (TicketClassify, …)."""
    for kind, actions in ACTION_SCHEMAS.items():
        for action, schema in actions.items():
            schema.__name__ = "".join(part.capitalize() for part in [kind, *action.split("_")])


_name_action_schemas()
