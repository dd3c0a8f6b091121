"""A ledger written before the code moved into its layers still opens, reads and verifies.

``tests/fixtures/ledger-before-layers`` is a ``CASELEDGER_HOME`` made by the code as it was at
commit c12cbf7 (before ``ledger/`` was split into ``ledger``, ``services`` and ``cli``):
``caseledger keys init``, ``caseledger demo --customers 6 --interactions 40 --seed 3``,
``caseledger checkpoint``. Stored events name their classes by topic (``module:QualName``); the
move touched no ``domain`` module, so every stored topic must still resolve, and the log,
checkpoint and sealed personal data must read exactly as before. The command line runs as a
separate process, the way an operator would run it after upgrading.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

from eventsourcing.utils import resolve_topic

from ledger.bootstrap import build, transparency_log
from ledger.settings import Settings

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ledger-before-layers"
ROOT = Path(__file__).resolve().parents[2]


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(FIXTURE, home)
    return home


def test_every_stored_topic_still_resolves_to_a_domain_class(tmp_path):
    with sqlite3.connect(_home(tmp_path) / "caseledger.db") as conn:
        topics = Counter(topic for (topic,) in conn.execute("SELECT topic FROM stored_events"))
    assert sum(topics.values()) > 200
    for topic in topics:
        assert topic.startswith("domain."), topic
        assert resolve_topic(topic).__module__.startswith("domain."), topic


def test_the_old_ledger_reads_and_verifies(tmp_path):
    home = _home(tmp_path)
    settings = Settings.from_environ({"CASELEDGER_HOME": str(home)})
    ledger = build(settings)
    try:
        events, after = [], 0
        while page := ledger.log(after=after, limit=500):
            events += page
            after = page[-1][0]
        assert len(events) == ledger.recorder.max_notification_id() > 200
        kinds = Counter(type(event).__module__ for _, event in events)
        assert {"domain.customer", "domain.interaction", "domain.ticket", "domain.complaint"} <= set(kinds)
        names = [event.personal["fields"]["name"] for _, event in events
                 if type(event).__qualname__ == "Customer.Registered"]
        assert len(names) == 6 and all(isinstance(name, str) and name for name in names)  # unsealed with the old KEK
        with sqlite3.connect(home / "caseledger.db") as conn:
            stored = b"".join(bytes(state) for (state,) in conn.execute("SELECT state FROM stored_events"))
        assert not any(name.encode() in stored for name in names)  # they were sealed, not stored in clear
        report = transparency_log(ledger, settings).verify()
        assert report.ok and report.leaves == len(events) and report.checkpoints_checked >= 1
    finally:
        ledger.close()


def test_the_command_line_verifies_the_old_ledger(tmp_path):
    env = {"CASELEDGER_HOME": str(_home(tmp_path)), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "cli.main", "verify"], env=env, capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "OK" in done.stderr and "checkpoints verified" in done.stderr
