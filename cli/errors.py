"""The command line's safety net: a failure is one line on stderr and a non-zero exit code, never a traceback.

Known operational failures (a bad setting, no ledger, an unreachable database, a file that cannot
be read, a value that does not parse, a rule of the domain) print ``error: <message>``. Anything
else prints its type and message, and the hint to run again with ``--debug``, which lets the
traceback through. Click's own usage errors become one line too (``--as-of yesterday``). Every
line has the passwords of any URL in it masked.
"""

from __future__ import annotations

import sqlite3
from typing import IO, Any

import click
import psycopg
from eventsourcing.persistence import PersistenceError
from psycopg_pool import PoolTimeout

from domain.errors import DomainError
from ledger.database import DatabaseUnavailable, LedgerMissing, redact
from ledger.errors import LedgerError
from ledger.keys import KeyMissing
from ledger.settings import SettingsError

#: Failures of the environment or of the input, each fully described by its message.
KNOWN: tuple[type[BaseException], ...] = (
    SettingsError, LedgerMissing, DatabaseUnavailable, KeyMissing, DomainError, LedgerError,
    psycopg.Error, PoolTimeout, PersistenceError, sqlite3.Error, OSError, ValueError,
)
#: What eventsourcing and the drivers say about the database, named as such in the line.
DATABASE: tuple[type[BaseException], ...] = (psycopg.Error, PoolTimeout, PersistenceError, sqlite3.Error)
DEBUG_HINT = "run with --debug for details"


def one_line(text: str) -> str:
    return redact(" ".join(str(text).split()))


class OneLineError(click.ClickException):
    """A ClickException shown as exactly one line: ``error: <message>``."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(one_line(message))
        self.exit_code = exit_code

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", file=file, err=True)


def describe(error: BaseException) -> str:
    """The one line for a known failure."""
    message = one_line(str(error)) or type(error).__name__
    if isinstance(error, DATABASE):
        return f"database: {message}"
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.strerror}: {error.filename}"
    return message


def translate(error: BaseException, *, debug: bool) -> BaseException | None:
    """The exception to raise instead of ``error`` (None: let ``error`` through as it is)."""
    if isinstance(error, (click.exceptions.Exit, click.Abort, SystemExit, OneLineError,
                          click.exceptions.NoArgsIsHelpError)):
        return None
    if isinstance(error, click.UsageError):
        hint = f" (see '{error.ctx.command_path} --help')" if error.ctx is not None else ""
        return OneLineError(error.format_message() + hint, error.exit_code)
    if isinstance(error, click.ClickException):
        return OneLineError(error.format_message(), error.exit_code)
    if isinstance(error, KeyboardInterrupt):
        return OneLineError("interrupted", 130)
    if debug:
        return None
    if isinstance(error, KNOWN):
        return OneLineError(describe(error))
    if isinstance(error, Exception):
        return OneLineError(f"{type(error).__name__}: {one_line(str(error))} ({DEBUG_HINT})")
    return None


class SafeGroup(click.Group):
    """The root group: every sub-command runs inside the safety net."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        # The root's own options (``caseledger --bogus``) are parsed here, before invoke.
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as error:
            replacement = translate(error, debug=False)
            if replacement is None:
                raise
            raise replacement from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BaseException as error:  # noqa: BLE001 - sorted out by translate
            replacement = translate(error, debug=bool(ctx.params.get("debug")))
            if replacement is None:
                raise
            raise replacement from None
