"""Failover to a synchronous standby, under load: no acknowledged event is lost, the log verifies.

A primary and a synchronous streaming standby (``cli.replicated_pg``: two throwaway clusters on
loopback, the standby made by ``pg_basebackup -R``), one ledger on the multi-host URL
``postgresql://…@127.0.0.1:P1,127.0.0.1:P2/postgres?target_session_attrs=read-write``. Writers
save from a few threads; a save is *acknowledged* when the call returned. Then the primary's
postmaster is killed (``kill -9``) and the standby promoted (``pg_ctl promote``) at once, as an HA
manager would; the writers keep going, each failed save tried again by the writer loop, while
the same ledger — and the same Flask app — go on without being rebuilt.

Checked on the new primary: every acknowledged event is there, the transparency log verifies, and
a checkpoint published before the failover is still consistent with it. The failover time printed
(``make failover`` shows it) runs from the kill to the first successful save begun after it.

Runs in the normal suite, bounded (:data:`BUDGET_SECONDS`), loopback only.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from api import create_app
from cli.replicated_pg import ReplicatedPostgres
from domain.context import Context
from ledger.bootstrap import build, transparency_log
from ledger.database import PG_EVENTS_TABLE
from ledger.integrity.trust import TrustSet
from ledger.keys import LogKeys
from ledger.settings import Settings
from services.tokens import TokenService, system_context

pytestmark = [pytest.mark.integration, pytest.mark.failover]

BUDGET_SECONDS = 90  # the whole test, clusters included
WRITERS = 3
LOAD_SECONDS = 1.5  # of writing before the checkpoint, again before the kill, and after the failover
RECOVERY_LIMIT = 30.0  # the first save after the kill must have succeeded by then
RETRY_PAUSE = 0.02  # a writer's pause after a failed save, before its next one
CONTACT = {"name": "王五", "phone": "13900001111"}


def _ctx() -> Context:
    return Context(actor_id="agent-li", actor_role="agent", occurred_at=datetime.now(timezone.utc),
                   request_id=uuid.uuid4().hex)


@dataclass(frozen=True)
class Save:
    kind: str
    aggregate_id: UUID
    version: int
    started: float
    returned: float


class Load:
    """Writers saving as fast as they can: a customer, then a ticket for it, and so on."""

    def __init__(self, ledger: Any, writers: int):
        self.ledger = ledger
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acknowledged: list[Save] = []
        self.failed: list[tuple[float, str]] = []
        self.threads = [threading.Thread(target=self._write, daemon=True) for _ in range(writers)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in self.threads)

    def _write(self) -> None:
        customer: UUID | None = None
        while not self.stop.is_set():
            save = self.save_one(customer)
            if save is not None:
                customer = save.aggregate_id if save.kind == "customer" else None

    def save_one(self, customer: UUID | None = None) -> Save | None:
        """One save; acknowledged (kept) if the call returned, else the failure is counted."""
        started = time.monotonic()
        try:
            if customer is None:
                kind, aggregate = "customer", self.ledger.register_customer(_ctx(), kind="individual",
                                                                            tier="general", contact=CONTACT)
            else:
                kind, aggregate = "ticket", self.ledger.open_ticket(_ctx(), customer_id=str(customer),
                                                                    channel="phone", summary="failover")
        except Exception as e:  # noqa: BLE001 - during the switch anything may fail; the loop goes on
            with self.lock:
                self.failed.append((started, type(e).__name__))
            time.sleep(RETRY_PAUSE)
            return None
        save = Save(kind, aggregate.id, aggregate.version, started, time.monotonic())
        with self.lock:
            self.acknowledged.append(save)
        return save


def test_failover_to_the_synchronous_standby_loses_no_acknowledged_event(tmp_path: Path):
    begun = time.monotonic()
    with ReplicatedPostgres(Settings.from_environ().pg_bindir) as pair:
        settings = Settings.from_environ({"CASELEDGER_DATABASE_URL": pair.url(target_session_attrs="read-write"),
                                          "CASELEDGER_HOME": str(tmp_path / "home")})
        LogKeys.from_settings(settings).init()
        ledger = build(settings)
        try:
            _run(pair, settings, ledger, begun)
        finally:
            ledger.close()
    assert time.monotonic() - begun < BUDGET_SECONDS


def _run(pair: ReplicatedPostgres, settings: Settings, ledger: Any, begun: float) -> None:
    setup_seconds = time.monotonic() - begun
    log = transparency_log(ledger, settings)
    tokens = TokenService(ledger)
    secret, _ = tokens.issue("agent-li", "agent", "hotline", ctx=system_context("test-setup"))
    api = _Api(create_app(settings, ledger, tokens=tokens).test_client(), secret)
    before_id = api.create_customer()
    assert api.get_customer(before_id) == 200

    load = Load(ledger, WRITERS)
    load.start()
    time.sleep(LOAD_SECONDS)
    _, kept_note = log.publish_checkpoint(datetime.now(timezone.utc))  # committed on both servers
    time.sleep(LOAD_SECONDS)

    pair.kill_primary()
    killed = time.monotonic()
    pair.promote()
    promoted = time.monotonic()
    while not any(s.started > killed for s in load.acknowledged):  # a save of our own too, begun after the kill
        assert time.monotonic() - killed < RECOVERY_LIMIT, f"no save succeeded {RECOVERY_LIMIT} s after the kill"
        load.save_one()
    first = min((s for s in load.acknowledged if s.started > killed), key=lambda s: s.returned)
    failover_seconds = first.returned - killed

    after_id = api.create_customer()  # the same app, its ledger and pool not rebuilt
    assert api.get_customer(before_id) == 200 and api.get_customer(after_id) == 200
    time.sleep(LOAD_SECONDS)
    load.finish()

    with ledger.recorder.datastore.get_connection() as conn:  # the ledger's own pool is on the new primary
        assert conn.info.port == pair.standby_port and conn.execute("SELECT pg_is_in_recovery()").fetchone() == \
            {"pg_is_in_recovery": False}
    with psycopg.connect(pair.dsn(pair.standby_port)) as conn:
        stored = {(UUID(str(oid)), version) for oid, version in
                  conn.execute(f"SELECT originator_id, originator_version FROM {PG_EVENTS_TABLE}")}
    acknowledged = load.acknowledged
    missing = [s for s in acknowledged if (s.aggregate_id, s.version) not in stored]
    assert not missing, f"{len(missing)} acknowledged events are not on the new primary: {missing[:3]}"
    assert {UUID(before_id), UUID(after_id)} <= {oid for oid, _ in stored}

    trust = TrustSet([LogKeys.from_settings(settings).verifier_text()])
    kept = trust.open_checkpoint(kept_note)[0]
    report = log.verify(external=[kept])
    assert report.ok, report.first_problem
    assert report.leaves == log.size() == len(stored) and kept.size <= log.size()
    assert kept.size in {c.size for c in log.open_checkpoints()}  # stored before the kill, still there

    during = Counter(kind for started, kind in load.failed if started >= killed - 1)
    print(f"\nfailover: primary 127.0.0.1:{pair.primary.port} killed (kill -9), standby 127.0.0.1:"
          f"{pair.standby_port} promoted in {promoted - killed:.2f} s; first successful save "
          f"{failover_seconds:.2f} s after the kill (kill → promoted → reconnected, no rebuild)\n"
          f"  acknowledged saves: {len(acknowledged)} ({sum(s.started > killed for s in acknowledged)} begun after "
          f"the kill), all on the new primary; failed saves retried by the writers: {len(load.failed)} "
          f"({dict(during)})\n  log: {log.size()} leaves, verifies; checkpoint of size {kept.size} published before "
          f"the kill still consistent; API read and write after promotion: ok\n"
          f"  clusters up in {setup_seconds:.1f} s; test {time.monotonic() - begun:.1f} s")


class _Api:
    def __init__(self, client: Any, secret: str):
        self.client, self.headers = client, {"Authorization": f"Bearer {secret}"}

    def create_customer(self) -> str:
        response = self.client.post("/customers", headers=self.headers,
                                    json={"kind": "individual", "tier": "vip", "contact": CONTACT})
        assert response.status_code == 201, response.json
        return response.json["id"]

    def get_customer(self, customer_id: str) -> int:
        return self.client.get(f"/customers/{customer_id}", headers=self.headers).status_code
