"""Helpers of the scheduled-job tests (tests/scheduler, tests/compliance): business time under test
control, running a job as of a time, and reading back the events the jobs recorded."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from domain.context import Context
from scheduler.runner import Outcome, run_job

#: Monday 2025-09-01 09:00 in Asia/Shanghai, as in the other suites.
T0 = datetime(2025, 9, 1, 9, 0, tzinfo=timezone(timedelta(hours=8)))
CST = timezone(timedelta(hours=8))


def moment(minutes: float = 0, *, when: datetime | None = None) -> datetime:
    return when if when is not None else T0 + timedelta(minutes=minutes)


class Jobs:
    """Run jobs on a ledger and read back what they recorded."""

    def __init__(self, ledger: Any, env: dict[str, str]):
        self.ledger, self.env = ledger, env

    def run(self, name: str, minutes: float = 0, *, when: datetime | None = None) -> Outcome:
        outcome = run_job(self.ledger, name, moment(minutes, when=when), settings=self.env)
        assert outcome.status == "finished", outcome.reason
        return outcome

    def events(self, qualname: str) -> list[Any]:
        found, after = [], 0
        while page := self.ledger.log(after=after, limit=500):
            found += [e for _, e in page if type(e).__qualname__ == qualname]
            after = page[-1][0]
        return found

    def breaches(self) -> set[tuple[str, str, int]]:
        """(case id, clock, cycle) of every SLABreached event; asserts none is recorded twice."""
        recorded = [(e.case_id, e.clock_key, e.cycle) for e in self.events("SLABreach.SLABreached")]
        assert len(recorded) == len(set(recorded)), "a breach was recorded twice"
        return set(recorded)

    def escalations(self) -> list[tuple[str, str]]:
        """(breach id, rung) of every Escalated event, in log order."""
        return [(str(e.originator_id), e.to_rung) for e in self.events("SLABreach.Escalated")]


def act(ledger: Any, kind: str, case_id: Any, action: str, ctx: Context, **args: Any) -> Any:
    return ledger.act(kind, case_id, action, ctx, args)


def tamper_event(ledger: Any, database_url: str, position: int) -> None:
    """Flip a byte of the stored event at log ``position``, as a superuser would: bypassing the
    append-only triggers (PostgreSQL: replication role; SQLite: drop them, change, put them back)."""
    table = ledger.recorder.events_table_name
    if database_url.startswith("postgresql"):
        import psycopg

        base, _, query = database_url.partition("?")
        schema = dict(p.split("=", 1) for p in query.split("&"))["schema"]
        with psycopg.connect(base) as conn:
            conn.execute("SET session_replication_role = replica")
            conn.execute(f'UPDATE "{schema}"."{table}" SET state = overlay(state placing '
                         "decode(lpad(to_hex(get_byte(state, 0) # 1), 2, '0'), 'hex') from 1 for 1) "
                         "WHERE notification_id = %s", (position,))
        return
    import sqlite3

    conn = sqlite3.connect(database_url[len("sqlite:///"):])
    triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
    for name, _ in triggers:
        conn.execute(f"DROP TRIGGER {name}")
    state = bytearray(conn.execute(f"SELECT state FROM {table} WHERE rowid = ?", (position,)).fetchone()[0])
    state[0] ^= 1
    conn.execute(f"UPDATE {table} SET state = ? WHERE rowid = ?", (bytes(state), position))
    for _, sql in triggers:
        conn.execute(sql)
    conn.commit()
    conn.close()
