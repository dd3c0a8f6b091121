"""``make prod``: every process of the Procfile together (``python -m cli.prod``).

Its own module, above both :mod:`cli.main` and :mod:`cli.serving`, so that serving need not import
the command line to know which sub-commands exist.
"""

from __future__ import annotations

import sys

from cli.main import main
from cli.serving import run_procfile
from ledger.settings import Settings, SettingsError

if __name__ == "__main__":
    try:
        settings = Settings.from_environ()
    except SettingsError as e:
        sys.exit(f"error: {e}")
    sys.exit(run_procfile(settings, main.commands))
