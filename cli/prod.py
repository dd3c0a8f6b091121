"""``make prod``: every process of the Procfile, supervised (``python -m cli.prod``; see ``cli.supervisor``).

Its own module, above both :mod:`cli.main` and :mod:`cli.serving`, so that serving need not import
the command line to know which sub-commands exist.
"""

from __future__ import annotations

import sys

from cli.errors import translate
from cli.main import main
from cli.serving import run_procfile
from ledger.settings import Settings


def run() -> int:
    """The Procfile's processes; a failure before they start (a bad setting, an unreachable
    database) is one line, as on the command line (``cli.errors``)."""
    try:
        return run_procfile(Settings.from_environ(), main.commands)
    except Exception as error:  # noqa: BLE001 - sorted out by translate
        replacement = translate(error, debug=False)
        if replacement is None:
            raise
        replacement.show()
        return replacement.exit_code


if __name__ == "__main__":
    sys.exit(run())
