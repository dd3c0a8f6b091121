"""``Idempotency-Key`` on every POST: a retry returns the first response instead of writing twice.

Keys are scoped per caller (the token's actor and role): two callers may use the same key. The
fingerprint is method, path with query, content type and body. See :mod:`ledger.idempotency` for
the claim and its guarantees; here: the same request again → the stored status, body and headers
(plus ``Idempotent-Replayed: true``); a different request with a used key → 422; a key whose
first request is still running after the wait → 409 with ``Retry-After``.
"""

from __future__ import annotations

from flask import Response, current_app, g, request
from werkzeug.exceptions import BadRequest

from api.auth import current_caller
from api.problems import problem
from ledger.idempotency import IdempotencyStore, fingerprint

HEADER = "Idempotency-Key"
MAX_KEY = 255
#: Response headers replayed with a stored response (the body's own, not per-request ones).
KEPT_HEADERS = ("Content-Type", "ETag", "Location")


def _store() -> IdempotencyStore:
    return current_app.extensions["caseledger.idempotency"]


def begin() -> Response | None:
    """before_request (after authorization): claim the key, replay, or refuse."""
    key = request.headers.get(HEADER)
    if request.method != "POST" or key is None:
        return None
    if not 0 < len(key) <= MAX_KEY or not all(33 <= ord(ch) < 127 for ch in key):
        raise BadRequest(f"{HEADER} must be 1 to {MAX_KEY} visible ASCII characters")
    caller = current_caller()
    scope = f"{caller.actor_id}:{caller.role}"
    outcome = _store().begin(scope, key, fingerprint(request.method, request.full_path, request.mimetype or "",
                                                      request.get_data(cache=True)))
    if outcome.kind == "run":
        g.idempotency = (scope, key, outcome.claim)
        return None
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
    held = g.pop("idempotency", None)
    if held is not None:
        scope, key, claim = held
        headers = {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers}
        _store().complete(scope, key, claim, response.status_code, headers, response.get_data())
    return response
