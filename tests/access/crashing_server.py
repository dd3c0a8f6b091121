"""A caseledger API on 127.0.0.1 whose process kills itself (SIGKILL: no cleanup, no finally, open
transactions and connections just cut) at a chosen point of the first request with an
Idempotency-Key — for tests/access/test_idempotency_crash.py.

    python crashing_server.py after-commit|before-commit LEASE_SECONDS SETTINGS_JSON

prints its port, then serves. The kill is the only thing changed: a request carries its claim,
saves and commits exactly as in production up to that point.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from datetime import timedelta

from werkzeug.serving import make_server

from api import create_app
from ledger import idempotency


def die(*_: object, **__: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    where, lease, settings = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
    if where == "after-commit":  # the events and the key's mark are committed; the response not yet kept
        idempotency.IdempotencyStore.complete = die
    elif where == "before-commit":  # inside the save, before its transaction commits
        idempotency.Claim.mark = die
    else:
        raise SystemExit(f"unknown crash point {where!r}")
    app = create_app(settings)
    app.extensions["caseledger.idempotency"].lease = timedelta(seconds=lease)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
