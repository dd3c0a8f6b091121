"""projections/README.md documents every read model the catalog maintains, with its tables."""

from __future__ import annotations

import re
from pathlib import Path

from projections.catalog import PROJECTIONS

README = Path(__file__).resolve().parents[2] / "projections" / "README.md"


def _table_rows() -> dict[str, str]:
    """Read model name → the rest of its row in the README's table (``| `name` | tables | … |``)."""
    rows = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\|\s*`([a-z_]+)`\s*\|(.*)\|\s*$", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_every_read_model_of_the_catalog_has_a_row_naming_its_tables():
    rows = _table_rows()
    missing = [p.name for p in PROJECTIONS if p.name not in rows]
    assert not missing, f"projections/README.md lists no row for {missing}"
    for projection in PROJECTIONS:
        named = set(re.findall(r"`(rm_[a-z_]+)`", rows[projection.name].split("|")[0]))
        assert named == {t.name for t in projection.tables}, projection.name
