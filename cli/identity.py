"""Who gives a command: the holder of an API token, resolved and checked exactly as over HTTP.

A command that changes something or shows personal data acts as a person. The token comes from
``--token-file FILE`` (an option of ``caseledger`` itself) or ``CASELEDGER_TOKEN``; it is looked
up in the ledger's token store (:mod:`services.tokens`), so the actor, role and team on every event
come from the token — there are no ``--actor``/``--role`` flags to claim them. The role must hold
the command's action in the permission matrix (``domain/permissions.toml``), the same one the API
applies. The command line works across records, so an action the role holds only for its own or
its team's records is refused here (use the API, which checks each record).

Business time is the wall clock: ordinary commands take no ``--at``. Every event a command writes
also records how it came in — ``via: cli``, the operating-system user and the host — so a compliance
rule can flag two "different" people acting from one shell account.
"""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import click

from cli.context import open_ledger, settings
from cli.errors import OneLineError
from domain.context import Context
from domain.permissions import AccessPolicy
from ledger.application import CaseLedger
from projections.case_people import CasePeople
from projections.runtime import ProjectionRunner
from projections.store import ViewDatabase
from services.access_log import AccessLog
from services.disclosure import Disclosure
from services.need_to_know import need_to_know
from services.tokens import Caller, TokenService

HOW_TO = ("set CASELEDGER_TOKEN or give 'caseledger --token-file FILE …' (a token from 'caseledger tokens "
          "create', or 'caseledger tokens bootstrap' on a new ledger)")


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers): the numeric id still tells people apart
        return f"uid-{os.getuid()}"


def _token() -> str | None:
    root = click.get_current_context().find_root()
    path: Path | None = root.params.get("token_file")
    if path is not None:
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise OneLineError(f"--token-file {path}: cannot read it ({e})") from None
        if not token:
            raise OneLineError(f"--token-file {path} is empty")
        return token
    return settings().token


@dataclass
class Acting:
    """A command given by an authenticated person, allowed to do ``action``."""

    ledger: CaseLedger
    caller: Caller
    access: AccessPolicy
    action: str

    def context(self, reason: str | None = None, *, imported: str | None = None,
                occurred_at: datetime | None = None, performed_by: str | None = None) -> Context:
        """The command's context: wall-clock business time unless a historical import says otherwise."""
        return Context(actor_id=self.caller.actor_id, actor_role=self.caller.role,
                       occurred_at=occurred_at or self.ledger.clock(), request_id=str(uuid.uuid4()),
                       reason=reason, via="cli", os_user=os_user(), host=socket.gethostname(), imported=imported,
                       performed_by=performed_by if imported else None)

    def disclosure(self, reason: str | None) -> Disclosure:
        """Masked unless a reason is given and the role may unmask (refused otherwise, not silently masked).

        The API's decision (``api.permissions._disclosure``): a role whose ``personal.unmask`` scope is
        ``own`` (agents) sees unmasked only the customers of cases they own or are assigned (need-to-know,
        003 §6.3); anyone else stays masked whatever the reason."""
        if reason is None:
            return Disclosure()
        scope = self.access.scope(self.caller.role, "personal.unmask")
        if scope is None:
            raise OneLineError(f"refused: a {self.caller.role} may not see personal data unmasked "
                               f"(personal.unmask, permission matrix {self.access.ref})")
        if scope == "own":
            return Disclosure(reason, need_to_know=need_to_know(self._case_people, self.caller.actor_id))
        return Disclosure(reason)

    def _case_people(self) -> ViewDatabase:
        """The ``case_people`` read model caught up with the log, by a runner of this command's own
        (as the API serves it: a read model stopped by an event is served as far as it got)."""
        runner = ProjectionRunner(self.ledger, [CasePeople(self.ledger)])
        command = click.get_current_context(silent=True)
        if command is not None:  # its connection ends with the command, not with the process
            command.call_on_close(runner.close)
        runner.ensure_tables()
        runner.catch_up(strict=False)
        return runner.db

    def record(self, disclosure: Disclosure, resource: str) -> None:
        """Write what was shown unmasked to the security audit log, as the API does."""
        if disclosure.disclosed:
            AccessLog(self.ledger, self.access).record(self.context(disclosure.reason), disclosure.disclosed,
                                                       resource=f"cli {resource}")


def acting(action: str, ledger: CaseLedger | None = None) -> Acting:
    """Authenticate the token holder and check that their role may do ``action`` on every record."""
    ledger = ledger or open_ledger()
    token = _token()
    if token is None:
        raise OneLineError(f"this command acts as a person: {HOW_TO}")
    access = AccessPolicy.load()
    caller = TokenService(ledger, access).caller(token)
    if caller is None:
        raise OneLineError("the token is not known, has expired or was revoked")
    scope = access.scope(caller.role, action)
    if scope is None:
        raise OneLineError(f"refused: a {caller.role} may not {action} (permission matrix {access.ref}, "
                           "domain/permissions.toml)")
    if scope != "all":
        raise OneLineError(f"refused: a {caller.role} may {action} only on {scope} records; the command line "
                           "acts across records, so use the API")
    return Acting(ledger, caller, access, action)
