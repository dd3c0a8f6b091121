"""``bench.history`` with issue 22's second-pass request changes undone at run time: the "before"
column of bench/RESULTS.md, measurable in the same session as the "after" (same load, same code).

    python -m bench.undo_second_pass [bench.history's arguments, e.g. --quick --part in-process]

Undone: the PostgreSQL checkout pings every connection again (``ledger.outage``); Flask's own JSON
provider instead of orjson's (``api.json_provider``); flask-limiter checks every request app-wide
(and adds its headers, resets its state after each) with no request filter (``api.log``); the
public-path test runs the URL map for every path (``api.auth.PublicPaths``).
"""

from __future__ import annotations

import sys

import api.app
import api.auth
import ledger.outage
from api.log import _limiters
from bench import history


def _as_before(app):  # noqa: ANN001, ANN202 - a Flask app
    from flask.json.provider import DefaultJSONProvider

    app.json = DefaultJSONProvider(app)
    limiter = app.extensions["caseledger.log_limiter"]
    limiter._request_filters.clear()  # noqa: SLF001
    for hooks in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        for hook in [h for h in hooks.get("log", []) if _limiters(h) is limiter]:
            hooks["log"].remove(hook)
            hooks.setdefault(None, []).append(hook)
    return app


def main() -> None:
    ledger.outage.PING_AFTER_IDLE_SECONDS = -1.0  # every checkout pings
    api.auth.PUBLIC_PATHS._prefixes = ("/",)  # noqa: SLF001 - every path runs the URL map
    create_app = api.app.create_app
    api.app.create_app = lambda *a, **k: _as_before(create_app(*a, **k))
    sys.argv[0] = "bench.undo_second_pass"
    history.main()


if __name__ == "__main__":
    main()
