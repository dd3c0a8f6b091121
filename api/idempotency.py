"""``Idempotency-Key`` on every POST: a retry returns the first response instead of writing twice.

Keys are scoped per caller (the token's actor and role): two callers may use the same key. The
fingerprint is method, path with query, content type and body. See :mod:`ledger.idempotency` for
the claim, its lease and its guarantees; here:

- the same request again → the stored status, body and headers (plus ``Idempotent-Replayed: true``);
- a different request with a used key → 422;
- a key whose first request is still running (its lease alive) after the wait → 409 with ``Retry-After``;
- a key whose first request died before its commit → the request runs (once);
- a key whose first request died after its commit, before its response was kept → the answer is
  rebuilt, not run again: the view's :func:`answers` function renders what was written (e.g. the
  resource at the version written), through the same schema, masking and headers as the view, and
  that response is kept and replayed from then on (with ``Idempotent-Replayed: true``).

While a request holds its key, the claim is :data:`ledger.idempotency.CLAIM`, so every save the
request makes marks the key in the transaction of its events.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from flask import Response, current_app, g, request
from werkzeug.exceptions import BadRequest

from api.auth import current_caller
from api.problems import problem
from ledger.idempotency import CLAIM, IdempotencyStore, Written, fingerprint

HEADER = "Idempotency-Key"
MAX_KEY = 255
#: Response headers replayed with a stored response (the body's own, not per-request ones).
KEPT_HEADERS = ("Content-Type", "ETag", "Location")
#: POST endpoints that write no events (so a key of theirs is never "written"): no answers needed.
WRITE_NO_EVENTS = frozenset({"log.publish_checkpoint",
                             "webhooks.replay"})  # re-queues a delivery row of the webhook worker, no event
#: POST endpoints that refuse an Idempotency-Key (400) because their answer may not be stored:
#: a webhook subscription's answer holds its secret (api/webhooks.py).
REFUSE_KEYS = frozenset({"webhooks.subscribe"})


def answers(rebuild: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a POST view (under flask-smorest's decorators): ``rebuild(written, *args, **kwargs)``
    returns what the view returned, from :class:`~ledger.idempotency.Written` (what the first request
    with this key committed) — the view itself is not run again."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def answer(*args: Any, **kwargs: Any) -> Any:
            written = g.get("idempotency_written")
            return view(*args, **kwargs) if written is None else rebuild(written, *args, **kwargs)

        answer.idempotent_answer = True  # type: ignore[attr-defined]
        return answer

    return decorate


def _answerable(endpoint: str | None) -> bool:
    view = current_app.view_functions.get(endpoint or "")
    while view is not None:
        if getattr(view, "idempotent_answer", False):
            return True
        view = getattr(view, "__wrapped__", None)
    return False


def _store() -> IdempotencyStore:
    return current_app.extensions["caseledger.idempotency"]


def begin() -> Response | None:
    """before_request (after authorization): claim the key, replay, or refuse."""
    if request.method != "POST":
        return None
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 0 < len(key) <= MAX_KEY or not all(33 <= ord(ch) < 127 for ch in key):
        raise BadRequest(f"{HEADER} must be 1 to {MAX_KEY} visible ASCII characters")
    caller = current_caller()
    scope = f"{caller.actor_id}:{caller.role}"
    outcome = _store().begin(scope, key, fingerprint(request.method, request.full_path, request.mimetype or "",
                                                      request.get_data(cache=True)))
    if outcome.kind in ("run", "reconstruct"):
        g.idempotency = outcome.claim
        g.idempotency_context = CLAIM.set(outcome.claim)
        if outcome.kind == "run":
            return None
        g.idempotency_written = outcome.claim.written
        if _answerable(request.endpoint):
            return None
        return problem(409, "Conflict", f"the first request with {HEADER} {key!r} was carried out, but its "
                       "response was lost and cannot be rebuilt here; read the resource for its result",
                       type_="idempotency-response-lost")
    if outcome.kind == "mismatch":
        return problem(422, "Unprocessable Content", f"{HEADER} {key!r} was used for a different request; "
                       "use a new key for a new request", type_="idempotency-key-reused")
    if outcome.kind == "pending":
        return problem(409, "Conflict", f"the first request with {HEADER} {key!r} has not finished; retry later",
                       type_="idempotency-in-progress", headers={"Retry-After": "1"})
    response = Response(outcome.body, status=outcome.status)
    response.headers.update(outcome.headers)
    response.headers["Idempotent-Replayed"] = "true"
    return response


def finish(response: Response) -> Response:
    """after_request (runs last): keep the response of the request that held the claim."""
    claim = g.pop("idempotency", None)
    if claim is not None:
        headers = {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers}
        _store().complete(claim, response.status_code, headers, response.get_data())
        if isinstance(g.get("idempotency_written"), Written):
            response.headers["Idempotent-Replayed"] = "true"  # rebuilt: the first request's answer
    return response


def teardown(_: BaseException | None = None) -> None:
    """teardown_request: the claim ends with its request (threads serve one request after another)."""
    context = g.pop("idempotency_context", None)
    if context is not None:
        CLAIM.reset(context)
