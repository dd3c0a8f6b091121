"""Authorization of every request, before any handler runs: endpoint → action → role's scope → record.

Each endpoint maps to one action of ``domain/permissions.toml`` (:func:`action_for`). An endpoint
without an action is refused for everyone (fail closed), and the role × endpoint test enumerates
the app's URL map so a new endpoint cannot slip through unmapped. The decision itself is
:class:`domain.permissions.AccessPolicy`'s; this module only finds the action and the record.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request
from werkzeug.exceptions import BadRequest, Forbidden

from api.auth import PUBLIC_PATHS
from api.audits import ACTIONS as AUDIT_ACTIONS
from api.compliance import ACTIONS as COMPLIANCE_ACTIONS
from api.exports import ACTIONS as EXPORT_ACTIONS
from api.masking import REASON_HEADER
from api.need_to_know import need_to_know_of
from api.webhooks import ACTIONS as WEBHOOK_ACTIONS
from services.disclosure import Disclosure
from domain.access import MAX_REASON
from domain.permissions import UNMASK, AccessPolicy

#: Collection blueprints (URL prefix) → aggregate kind.
KIND_OF_COLLECTION = {"customers": "customer", "interactions": "interaction", "tickets": "ticket",
                      "complaints": "complaint", "feedback": "feedback", "surveys": "survey"}
KIND_OF_COLLECTION["incidents"] = "incident"  # api/incidents.py (issue 19)
KIND_OF_COLLECTION["case_surveys"] = "case_survey"  # api/surveys.py (issue 19)
#: Endpoints outside the collections → action.
ACTIONS = {
    "events.list": "events.read",
    "views.tickets": "views.tickets", "views.complaints": "views.complaints",
    "dashboards.kpis": "dashboards.read",
    "incidents.list": "incident.read", "work.unregistered_contacts": "work.queues",  # issue 19 (api/incidents.py,
    "work.open_feedback": "work.queues", "work.complaints": "work.queues",  # api/work.py)
    "replay.timeline": "replay.read", "replay.state": "replay.read", "replay.diff": "replay.read",
    "log.latest_checkpoint": "log.read", "log.inclusion": "log.read", "log.consistency": "log.read",
    "log.tile": "log.read",  # public like the three above (api.auth.PUBLIC_LOG_PATHS); mapped for callers with a token
    "log.publish_checkpoint": "log.publish",
    "access.events": "access.read",
    "retention.records": "retention.read", "retention.report": "retention.read",
    "holds.list": "retention.read", "holds.get": "retention.read", "holds.place": "holds.place",
    "holds.release": "holds.release", "dispositions.get": "retention.read",
    "dispositions.propose": "dispositions.propose", "dispositions.approve": "dispositions.approve",
    "dispositions.reject": "dispositions.reject", "dispositions.execute": "dispositions.execute",
}
ACTIONS.update(COMPLIANCE_ACTIONS)  # declared beside their endpoints
ACTIONS.update(AUDIT_ACTIONS)  # samples and audit engagements (issue 20), declared in api/audits.py
ACTIONS.update(WEBHOOK_ACTIONS)  # /webhooks/...: webhooks.manage (api/webhooks.py)
ACTIONS.update(EXPORT_ACTIONS)  # /exports/...: exports.create / exports.read (api/exports.py)
#: List endpoints that scoped callers must filter to themselves, and whether their rows have a team.
SCOPED_LISTS = {"views.tickets": True, "views.complaints": False}
SCOPED_LISTS.update({"work.open_feedback": False, "work.complaints": False})  # api/work.py: filter owner=<you>


def access_policy() -> AccessPolicy:
    return current_app.extensions["caseledger.access"]


def action_for(endpoint: str) -> str | None:
    """The permission an endpoint needs (``ticket.read``, ``ticket.classify``, ``events.read``…)."""
    if endpoint in ACTIONS:
        return ACTIONS[endpoint]
    blueprint, _, name = endpoint.partition(".")
    kind = KIND_OF_COLLECTION.get(blueprint)
    if kind is None or not name:
        return None
    return f"{kind}.read" if name in ("get", "events") else f"{kind}.{name}"


def _record(req: Any = request) -> tuple[str, Any] | None:
    """(kind, id) of the record the request is about, if it names one."""
    args = req.view_args or {}
    if "aggregate_id" not in args:
        return None
    kind = args.get("kind") or KIND_OF_COLLECTION.get(req.blueprint or "")
    return (kind, args["aggregate_id"]) if kind else None


def authorize() -> None:
    """before_request (after authentication): refuse what the caller's role may not do (403)."""
    # The request, app and g objects themselves, not their proxies: a dozen lookups fewer (issue 22).
    req, app, state = request._get_current_object(), current_app._get_current_object(), g._get_current_object()
    endpoint = req.endpoint
    if req.path in PUBLIC_PATHS or req.url_rule is None or endpoint is None:
        return  # public, or routing fails next (404/405) — after authentication, so nothing leaks
    caller, policy = state.caller, app.extensions["caseledger.access"]
    action = action_for(endpoint)
    scope = policy.scope(caller.role, action) if action else None
    if scope is None:
        raise Forbidden(f"the {caller.role} role may not {action or 'use this endpoint'}")
    record = _record(req)
    if record is not None and scope != "all":
        kind, aggregate_id = record
        aggregate = app.extensions["caseledger"].get(kind, aggregate_id)  # unknown: 404
        if not policy.in_scope(caller, scope, kind, aggregate):
            raise Forbidden(f"the {caller.role} role may {action} only on records of its {scope} scope")
        state.loaded_record = (kind, str(aggregate_id), aggregate)  # the handler uses it: one load per request
    if endpoint in SCOPED_LISTS and scope != "all":
        filters = {name: req.args.getlist(name) for name in ("owner", "handler", "team")}
        if not policy.list_in_scope(caller, scope, filters, has_team=SCOPED_LISTS[endpoint]):
            wanted = f"owner={caller.actor_id} or handler={caller.actor_id}"
            if scope == "team" and SCOPED_LISTS[endpoint]:
                wanted += f" or team={caller.team or '<your team>'}"
            raise Forbidden(f"the {caller.role} role lists only its own records: filter with {wanted}")
    state.disclosure = _disclosure(caller, policy, req)


def _disclosure(caller: Any, policy: AccessPolicy, req: Any = request) -> Disclosure:
    reason = req.headers.get(REASON_HEADER)
    if reason is None:
        return Disclosure()
    try:  # HTTP header bytes arrive as latin-1; a reason written in Chinese was sent as UTF-8
        reason = reason.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON or not reason.isprintable():
        raise BadRequest(f"{REASON_HEADER} states why you need personal data unmasked "
                         f"(1 to {MAX_REASON} printable characters)")
    if policy.scope(caller.role, UNMASK) is None:
        raise Forbidden(f"the {caller.role} role may not read personal data unmasked")
    if policy.scope(caller.role, UNMASK) == "own":  # need-to-know (003 §6.3): only their own cases' customers
        return Disclosure(reason, need_to_know=need_to_know_of(caller.actor_id))
    return Disclosure(reason)

