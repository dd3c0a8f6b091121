"""Cost of per-subject encryption: the same workload through a ledger with and without data keys.

    python -m bench.encryption [--subjects N] [--updates K] [--quick]

Both ledgers run in this process on the same backend (a fresh SQLite file or PostgreSQL schema
each): N customers registered (each a new data subject: a new data key is made, wrapped and
stored) and K contact updates each (the key comes from the cache), one event per transaction.
Then every notification is read back and decoded three ways: unencrypted; encrypted and
unsealed (what the API does); encrypted, left sealed (what projections do). Finally all read
models are rebuilt from zero on both.
"""

from __future__ import annotations

import argparse
import uuid
from datetime import datetime, timedelta, timezone

from bench.common import fresh_database_url, machine, postgres_dsn, print_table, timed
from domain.context import Context
from domain.policy import PolicyBook
from ledger.application import CaseLedger
from ledger.bootstrap import Settings
from ledger.calendar import ChineseBusinessCalendar
from ledger.crypto import KeyEncryptionKey
from projections.catalog import runner_for

T0 = datetime(2025, 9, 1, 9, 0, tzinfo=timezone(timedelta(hours=8)))


def make_ledger(url: str, encrypted: bool) -> CaseLedger:
    settings = Settings.from_environ({"CASELEDGER_DATABASE_URL": url})
    kek = KeyEncryptionKey(bytes(range(32))) if encrypted else None
    return CaseLedger(settings.persistence_env(), policies=PolicyBook.load(), calendar=ChineseBusinessCalendar(),
                      kek=kek)


def workload(ledger: CaseLedger, subjects: int, updates: int) -> tuple[float, float]:
    """Seconds for the registrations (new subjects) and for the updates (known subjects)."""
    ids: list[uuid.UUID] = []
    minute = iter(range(10**9))

    def ctx() -> Context:
        return Context("agent-li", "agent", T0 + timedelta(minutes=next(minute)), uuid.uuid4().hex)

    def register() -> None:
        for n in range(subjects):
            ids.append(ledger.register_customer(ctx(), kind="individual", tier="general",
                                                contact={"name": f"客户{n}", "phone": f"138{n:08d}"}).id)

    def update() -> None:
        for k in range(updates):
            for cid in ids:
                ledger.act("customer", cid, "update_contact", ctx(), {"contact": {"address": f"路{k}号"}})

    return timed(register), timed(update)


def decode_all(ledger: CaseLedger, mapper) -> tuple[int, float]:  # noqa: ANN001
    count = 0

    def run() -> None:
        nonlocal count
        after = 0
        while True:
            page = ledger.recorder.select_notifications(start=after + 1, limit=1000)
            if not page:
                return
            for n in page:
                mapper.to_domain_event(n)
            count += len(page)
            after = page[-1].id

    seconds = timed(run)
    return count, seconds


def rebuild(ledger: CaseLedger) -> float:
    runner = runner_for(ledger)
    try:
        return timed(runner.rebuild)
    finally:
        runner.close()


def measure(backend: str, dsn: str | None, subjects: int, updates: int) -> list[list[object]]:
    plain = make_ledger(fresh_database_url(backend, dsn), encrypted=False)
    sealed = make_ledger(fresh_database_url(backend, dsn), encrypted=True)
    try:
        p_reg, p_upd = workload(plain, subjects, updates)
        s_reg, s_upd = workload(sealed, subjects, updates)
        events, p_dec = decode_all(plain, plain.mapper)
        _, s_dec = decode_all(sealed, sealed.mapper)
        _, f_dec = decode_all(sealed, sealed.facts_mapper())
        p_reb, s_reb = rebuild(plain), rebuild(sealed)
    finally:
        plain.close()
        sealed.close()
    rate = lambda n, s: f"{n / s:,.0f}/s"  # noqa: E731
    ratio = lambda base, other: f"{base / other:.2f}×"  # noqa: E731
    n_upd = subjects * updates
    return [
        [backend, "append, new subject (register)", rate(subjects, p_reg), rate(subjects, s_reg), ratio(p_reg, s_reg)],
        [backend, "append, known subject (update)", rate(n_upd, p_upd), rate(n_upd, s_upd), ratio(p_upd, s_upd)],
        [backend, "read + decode, personal unsealed", rate(events, p_dec), rate(events, s_dec), ratio(p_dec, s_dec)],
        [backend, "read + decode, personal left sealed", rate(events, p_dec), rate(events, f_dec), ratio(p_dec, f_dec)],
        [backend, "rebuild all read models", rate(events, p_reb), rate(events, s_reb), ratio(p_reb, s_reb)],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=2000)
    parser.add_argument("--updates", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="CI-sized: 300 subjects")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    subjects = 300 if args.quick else args.subjects
    rows: list[list[object]] = []
    if args.backend in ("sqlite", "both"):
        rows += measure("sqlite", None, subjects, args.updates)
    if args.backend in ("postgres", "both"):
        with postgres_dsn() as dsn:
            rows += measure("postgres", dsn, subjects, args.updates)
    print_table(f"Per-subject encryption: {subjects} subjects × (1 + {args.updates}) events · {machine()}",
                ["backend", "operation", "unencrypted", "encrypted", "encrypted / unencrypted"], rows)


if __name__ == "__main__":
    main()
