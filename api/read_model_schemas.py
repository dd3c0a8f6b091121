"""The read-model API contract: queries and responses of dashboards, case lists and auditor replay."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from api.schemas import BIGINT, Cursor, Name, NextCursor, Strict, Vocab
from projections.kpi_grouping import GROUPINGS, valid_grouping


def _grouping(value: str) -> None:
    """A KPI grouping ``projections.kpi_grouping`` accepts (marshmallow 4 validators raise)."""
    if not valid_grouping(value):
        raise validate.ValidationError(f"one or more of {', '.join(GROUPINGS)}, comma-separated, "
                                       "each once, at most one of day/week/month/quarter")

#: Response headers of every read-model endpoint (``api.read_models``: the state they answer from).
READ_MODEL_HEADERS = {
    "X-Read-Model-Position": {"description": "log position the read model(s) of this answer reflect",
                              "schema": {"type": "integer"}},
    "X-Read-Model-Stalled": {"description": "only when one of them is stalled on an event it cannot apply: "
                                            "'<read model> at <log position>: <reason>' ('; ' between several); "
                                            "the answer is its last good state", "schema": {"type": "string"}},
}

Names = lambda **kw: fields.List(Name(), load_default=None, **kw)  # noqa: E731 - repeat the parameter for "any of"
#: Any of these values of a vocabulary (repeat the parameter).
AnyOf = lambda vocabulary, **kw: fields.List(Vocab(vocabulary), load_default=None, **kw)  # noqa: E731


class ListQuery(Strict):
    overdue = fields.Boolean(load_default=None, metadata={"description": "only cases whose main clock is late at as_of"
                                                                         " (false: only those that are not)"})
    as_of = fields.AwareDateTime(load_default=None, metadata={"description": "time for 'overdue' (default: now)"})
    cursor = Cursor()
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    channel = AnyOf("channel")
    owner = Names(metadata={"description": "tickets: first-contact owner (首问负责人); complaints: handler"})
    handler = Names()
    customer_id = fields.List(fields.UUID(), load_default=None)


class TicketListQuery(ListQuery):
    status = AnyOf("ticket_status")
    priority = AnyOf("priority")
    complexity = AnyOf("complexity")
    team = Names()


class ComplaintListQuery(ListQuery):
    status = AnyOf("complaint_status")
    level = fields.List(Vocab("complaint_level", fields.Integer, validate=validate.Range(min=0, max=BIGINT)),
                        load_default=None)
    complaint_type = AnyOf("complaint_type")
    rung = AnyOf("escalation_rung")


class Flag(fields.Boolean):
    """A boolean stored as 0/1 in a read model (marshmallow 4 dumps booleans as they are)."""

    def _serialize(self, value, attr, obj, **kwargs):  # noqa: ANN001, ANN003, ANN202
        return None if value is None else bool(value)


Opt = lambda: fields.String(allow_none=True)  # noqa: E731 - a column that is empty until its milestone
Count = lambda: fields.Integer(allow_none=True)  # noqa: E731


class TicketRow(Schema):
    ticket_id, customer_id, interaction_id = fields.String(), fields.String(), Opt()
    seq, version = fields.Integer(), fields.Integer()
    channel, status, priority, complexity = fields.String(), fields.String(), Opt(), Opt()
    high_risk, overdue = Flag(allow_none=True), Flag(allow_none=True)
    first_contact_owner, handler, team, policy_ref = Opt(), Opt(), Opt(), fields.String()
    received_at, clock_started_at, paused_since = Opt(), Opt(), Opt()
    resolution_deadline, resolved_at, closed_at, updated_at = Opt(), Opt(), Opt(), Opt()
    paused_seconds, reopen_count, rework_count = Count(), Count(), Count()


class ComplaintRow(Schema):
    complaint_id, customer_id, ticket_id = fields.String(), fields.String(), Opt()
    seq, version, level = fields.Integer(), fields.Integer(), Count()
    channel, status, complaint_type, rung, handler = fields.String(), fields.String(), Opt(), Opt(), Opt()
    escalations, evidence_count = Count(), Count()
    remedy_kind, policy_ref = Opt(), fields.String()
    satisfied = Flag(allow_none=True)
    root_cause_recorded, overdue = Flag(allow_none=True), Flag(allow_none=True)
    accepted_at, closed_loop_deadline, notified_at, archived_at, updated_at = Opt(), Opt(), Opt(), Opt(), Opt()


class _Page(Schema):
    next_cursor = NextCursor()
    position = fields.Integer(metadata={"description": "log position the read model has processed"})
    as_of = fields.String()


class TicketPage(_Page):
    items = fields.List(fields.Nested(TicketRow))


class ComplaintPage(_Page):
    items = fields.List(fields.Nested(ComplaintRow))


class KpiQuery(Strict):
    from_ = fields.Date(data_key="from", load_default=None, metadata={"description": "first business day (default: to − 29)"})
    to = fields.Date(load_default=None, metadata={"description": "last business day, inclusive (default: today)"})
    group_by = fields.String(load_default="day", validate=_grouping, metadata={"description": (
        "one or more of day, week, month, quarter (at most one), channel, team, agent, service_type, tier, "
        "priority, comma-separated, e.g. agent,month")})


class KpiTarget(Schema):
    op, clause = fields.String(allow_none=True), fields.String()
    value = fields.Float(allow_none=True)
    met = fields.Boolean(allow_none=True)


class KpiValue(Schema):
    key, unit, definition = fields.String(), fields.String(), fields.String()
    value = fields.Float(allow_none=True)
    numerator, denominator = fields.Integer(allow_none=True), fields.Integer(allow_none=True)
    target = fields.Nested(KpiTarget, allow_none=True)


class KpiGroup(Schema):
    group = fields.String()
    dimensions = fields.Dict(keys=fields.String(), values=fields.String(),
                             metadata={"description": "the group's value per group_by dimension"})
    counters = fields.Dict(keys=fields.String(), values=fields.Integer())
    kpis = fields.List(fields.Nested(KpiValue))


class Dashboard(Schema):
    from_ = fields.String(data_key="from")
    to, group_by, policy = fields.String(), fields.String(), fields.String()
    customers, position = fields.Integer(), fields.Integer()
    groups = fields.List(fields.Nested(KpiGroup))


class TimelineEntry(Schema):
    position, version = fields.Integer(), fields.Integer()
    kind, aggregate_id, type = fields.String(), fields.String(), fields.String()
    occurred_at, recorded_at = fields.String(), fields.String()
    actor_id, actor_role, policy, reason = fields.String(), fields.String(), fields.String(), fields.String(allow_none=True)
    data = fields.Dict()
    personal_fields = fields.List(fields.String(), metadata={"description": "personal data present (values not shown)"})


class Timeline(Schema):
    kind, id = fields.String(), fields.String()
    items = fields.List(fields.Nested(TimelineEntry))


class NoQuery(Strict):
    """An endpoint that takes no query parameters (so that any given is refused, not ignored)."""


class StateQuery(Strict):
    as_of = fields.AwareDateTime(load_default=None, metadata={"description": "business time"})
    position = fields.Integer(load_default=None, validate=validate.Range(min=0, max=BIGINT),
                              metadata={"description": "log position"})


class ReplayedState(Schema):
    kind, id, point = fields.String(), fields.String(), fields.String()
    state = fields.Dict()


class DiffQuery(Strict):
    from_ = fields.String(data_key="from", required=True, validate=validate.Length(min=1, max=64),
                          metadata={"description": "log position (digits) or ISO time"})
    to = fields.String(required=True, validate=validate.Length(min=1, max=64))


class ReplayedDiff(Schema):
    kind, id = fields.String(), fields.String()
    from_ = fields.String(data_key="from")
    to = fields.String()
    from_version, to_version = fields.Integer(), fields.Integer()
    changed = fields.Dict(metadata={"description": "attribute -> {from, to}"})
