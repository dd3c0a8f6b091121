"""The read models and replay behind the console's pages, caught up on demand (one lock per app),
as the API's ``api.read_models`` does: what a page shows includes every event committed before it."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any

from flask import current_app, g

from domain.context import Context
from projections.catalog import runner_for
from projections.runtime import ProjectionRunner
from services.replay import Replay

log = logging.getLogger("caseledger.console")
_SETUP = threading.Lock()


class LiveViews:
    def __init__(self, ledger: Any):
        self.ledger = ledger
        self.runner: ProjectionRunner = runner_for(ledger)
        self.replay = Replay(ledger, self.runner.db)
        self.lock = threading.Lock()

    def fresh(self) -> list[Any]:
        """Catch up (never failing a page: a stalled read model is served as it is); their states."""
        with self.lock:
            try:
                self.runner.catch_up(strict=False)
            except Exception as e:
                log.warning("console: catching up failed, serving the last committed state", exc_info=e)
                self.runner.db.close()
            return list(self.runner.status())


def views() -> LiveViews:
    with _SETUP:
        live = current_app.extensions.get("console.views")
        if live is None:
            live = current_app.extensions["console.views"] = LiveViews(current_app.extensions["caseledger"])
        return live


def ledger() -> Any:
    return current_app.extensions["caseledger"]


def business_now() -> Any:
    return current_app.extensions["caseledger.clock"]()


def context(reason: str | None = None) -> Context:
    """The signed-in person as the actor of a command given from a page."""
    caller = g.caller
    return Context(actor_id=caller.actor_id, actor_role=caller.role, occurred_at=business_now(),
                   request_id=g.get("request_id") or str(uuid.uuid4()), reason=reason)
