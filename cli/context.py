"""What every command needs: the settings, read once per invocation, and the ledger they configure.

The settings are read from the environment the first time a command asks (``--help`` never
does), kept on click's root context, and a bad value ends the command with one line naming the
variable (exit code 1).
"""

from __future__ import annotations

import click

from ledger import bootstrap
from ledger.application import CaseLedger
from ledger.settings import Settings, SettingsError


def settings() -> Settings:
    root = click.get_current_context().find_root()
    if not isinstance(root.obj, Settings):
        try:
            root.obj = Settings.from_environ()
        except SettingsError as e:
            raise click.ClickException(str(e)) from None
    return root.obj


def open_ledger() -> CaseLedger:
    """The ledger the settings name, which must exist: a command that finds none ends with one line
    saying where it looked and that ``caseledger db init`` creates one (``ledger.database``)."""
    return bootstrap.build(settings(), create=False)


def create_ledger() -> tuple[CaseLedger, bool]:
    """The ledger, created if there is none (``db init``, ``serve``, ``demo`` only); and whether it was."""
    return bootstrap.create_ledger(settings())
