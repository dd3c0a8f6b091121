"""Who may see a console page: the API's permission matrix, applied to pages.

Every view names the action of ``domain/permissions.toml`` it needs with :func:`needs` (pages that
read a case need that kind's ``<kind>.read``, checked against the record's scope by
:func:`record_in_scope`). A view without an action is refused for everyone, as in ``api.permissions``
(fail closed); only the pages of :data:`PUBLIC_ENDPOINTS` need no session.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from flask import current_app, g, request
from werkzeug.exceptions import Forbidden

from console.views import views
from domain.access import MAX_REASON
from domain.permissions import UNMASK, AccessPolicy
from services.disclosure import Disclosure
from services.need_to_know import need_to_know

#: Pages anyone may open: sign-in, the API docs, static files.
PUBLIC_ENDPOINTS = frozenset({"sign_in", "sign_in_form", "docs", "docs_asset", "static"})
#: What a page needs that is not one fixed action: any record kind's read (decided per record).
PER_RECORD = "<kind>.read"
#: Pages every signed-in person may open whatever their role (the home page, sign-out).
SIGNED_IN = "<signed in>"
CSRF_FIELD = "csrf_token"


def needs(action: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def mark(view: Callable[..., Any]) -> Callable[..., Any]:
        view.console_action = action  # type: ignore[attr-defined]
        return view
    return mark


def action_of(endpoint: str) -> str | None:
    view = current_app.view_functions.get(endpoint)
    return getattr(view, "console_action", None)


def policy() -> AccessPolicy:
    return current_app.extensions["caseledger.access"]


def may(action: str) -> bool:
    """May the signed-in caller do ``action`` at all (any scope)? Used to show or hide links."""
    caller = g.get("caller")
    return caller is not None and policy().scope(caller.role, action) is not None


def authorize() -> None:
    """before_request, after the session is known: the page's action, at any scope (403 otherwise)."""
    action = action_of(request.endpoint or "")
    if action is None:
        raise Forbidden("this page is not mapped to an action")
    if action in (PER_RECORD, SIGNED_IN):
        return  # PER_RECORD: the view checks the record's own kind and scope
    if policy().scope(g.caller.role, action) is None:
        raise Forbidden(f"the {g.caller.role} role may not {action}")


def record_in_scope(kind: str, aggregate: Any) -> None:
    """403 unless the caller may read this record (``<kind>.read`` in a scope that covers it)."""
    caller, access = g.caller, policy()
    scope = access.scope(caller.role, f"{kind}.read")
    if scope is None or not access.in_scope(caller, scope, kind, aggregate):
        raise Forbidden(f"the {caller.role} role may not read this {kind}")


def disclosure_for(reason: str | None) -> Disclosure:
    """Masked unless a reason is given and the role holds personal.unmask (403 otherwise); the API's
    decision (``api.permissions._disclosure``): a role whose unmask grant has scope ``own`` (agents)
    sees only the customers of cases they own or handle (``services.need_to_know``), whatever the reason."""
    if reason is None or not reason.strip():
        return Disclosure()
    reason = reason.strip()
    if len(reason) > MAX_REASON or not reason.isprintable():
        raise Forbidden(f"a reason is 1 to {MAX_REASON} printable characters")
    if policy().scope(g.caller.role, UNMASK) is None:
        raise Forbidden(f"the {g.caller.role} role may not read personal data unmasked")
    if policy().scope(g.caller.role, UNMASK) == "own":
        return Disclosure(reason, need_to_know=need_to_know(_case_people, g.caller.actor_id))
    return Disclosure(reason)


def _case_people() -> Any:
    """The console's read models caught up with the log (``case_people`` among them), as the API's."""
    live = views()
    live.fresh()
    return live.runner.db


def check_csrf(expected: str) -> None:
    """Every POST carries the session's CSRF token in a hidden field (403 otherwise)."""
    sent = request.form.get(CSRF_FIELD, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise Forbidden("the form's CSRF token is missing or wrong: reload the page and try again")
