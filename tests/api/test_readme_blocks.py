"""Every shell block of the README marked ``<!-- runnable -->`` runs, and exits 0.

A block is marked by an HTML comment on the line before its fence (invisible on GitHub). Each runs
with ``sh -e`` in a temporary folder of its own, with ``CASELEDGER_HOME`` and
``CASELEDGER_DATABASE_URL`` naming a new, empty ledger — once on SQLite and once on PostgreSQL —
and the project's ``caseledger`` first on ``PATH``. Nothing else of the caller's environment is
passed, so a block cannot lean on a token or a ledger that happens to be around.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
MARKED = re.compile(r"^<!-- runnable -->\n```(?:sh|bash|shell)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def runnable_blocks(text: str) -> list[str]:
    return MARKED.findall(text)


def test_the_marker_finds_blocks_and_only_marked_ones():
    sample = "```sh\nrm -rf /\n```\n<!-- runnable -->\n```sh\necho one\n```\n\n<!-- runnable -->\n```sh\necho two\n```\n"
    assert runnable_blocks(sample) == ["echo one\n", "echo two\n"]


def test_every_runnable_readme_block_exits_0(env, tmp_path):
    blocks = runnable_blocks(README.read_text(encoding="utf-8"))
    assert blocks, "the README marks no block as runnable"
    for number, block in enumerate(blocks, start=1):
        folder = tmp_path / f"block-{number}"
        folder.mkdir()
        environment = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin{os.pathsep}/bin",
                       "HOME": str(folder), "LANG": "C.UTF-8",
                       "CASELEDGER_HOME": str(folder / "home"),
                       "CASELEDGER_DATABASE_URL": env["CASELEDGER_DATABASE_URL"]}
        done = subprocess.run(["sh", "-e", "-c", block], cwd=folder, env=environment, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, f"README block {number} failed ({done.returncode}):\n{block}\n{done.stdout}\n{done.stderr}"
