"""The README's permission table is the matrix of domain/permissions.toml, as `caseledger
permissions` prints it: a new action or grant cannot leave the documentation behind."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from cli.main import main

README = Path(__file__).parents[2] / "README.md"


def test_the_readme_shows_the_whole_permission_matrix():
    printed = CliRunner().invoke(main, ["permissions"]).stdout.strip().splitlines()
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(printed[0])
    assert lines[start:start + len(printed)] == printed
    assert not lines[start + len(printed)].startswith("|")  # and no row the matrix no longer has
