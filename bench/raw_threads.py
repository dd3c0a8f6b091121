"""The concurrency baseline of issue 22, target 2: a raw eventsourcing ``Application`` driven by N threads.

Each thread owns its tickets (as the API load generator's clients do) and repeats the same
command as ``POST /tickets/{id}/classify``: ``repository.get``, the domain's ``classify``, ``save``
— eventsourcing's own mapper and recorder (no Merkle log, no encryption, no HTTP, no
authentication), one connection per thread from a pool as large as the thread count, on a fresh
schema of the same PostgreSQL server. ``bench.api_latency`` prints the API's command throughput
as a ratio to this one.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from eventsourcing.application import Application

from bench.common import fresh_database_url
from bench.cpu_split import CpuSample
from domain.context import Context
from domain.policy import PolicyBook
from domain.ticket import Ticket
from ledger.settings import Settings

PRIORITIES = ("urgent", "important", "normal")  # as bench.api_latency


class RawApplication(Application):
    name = "CaseLedger"


def _ctx(at: datetime) -> Context:
    return Context("lead-bench", "team_lead", at, uuid.uuid4().hex)


def raw_command_rate(dsn: str, *, clients: int, requests: int, seconds: float, tickets: int) -> dict[str, Any]:
    """Commands per second (and errors) of ``clients`` threads, ``requests`` commands in all."""
    env = Settings.from_environ({"CASELEDGER_DATABASE_URL": fresh_database_url("postgres", dsn),
                                 "CASELEDGER_HOME": "/tmp/caseledger-bench"}).persistence_env()
    env.pop("APPLICATION_RECORDER_TOPIC")  # eventsourcing's recorder
    env.pop("AGGREGATE_CACHE_MAXSIZE", None)  # the library's defaults: no cache, no snapshots
    env.pop("IS_SNAPSHOTTING_ENABLED", None)
    env["POSTGRES_POOL_SIZE"] = str(clients)
    app = RawApplication(env)
    book = PolicyBook.load()
    policy = book.in_force(datetime.now(timezone.utc), book.default_name)
    start_at = datetime.now(timezone.utc) - timedelta(days=1)
    ids = []
    for n in range(tickets):
        ticket = Ticket.receive(id=uuid.uuid4(), customer_id=str(uuid.uuid4()), channel="phone", summary="宽带断了",
                                first_contact_owner="agent-bench", policy=policy, ctx=_ctx(start_at + timedelta(seconds=n)))
        app.save(ticket)
        ids.append(ticket.id)
    own = [ids[i::clients] for i in range(clients)]
    per_client = max(requests // clients, 1)
    errors = [0] * clients
    done = [0] * clients
    barrier = threading.Barrier(clients + 1)
    deadline = time.perf_counter() + seconds + 5

    def work(i: int) -> None:
        rng = random.Random(i)
        barrier.wait()
        for _ in range(per_client):
            if time.perf_counter() > deadline:
                break
            try:
                ticket = app.repository.get(rng.choice(own[i]))
                ticket.classify(priority=rng.choice(PRIORITIES), complexity="general", high_risk=False,
                                policy=policy, ctx=_ctx(datetime.now(timezone.utc)))
                app.save(ticket)
                done[i] += 1
            except Exception:  # noqa: BLE001 - counted, as the API bench counts non-2xx answers
                errors[i] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    before = CpuSample.take(None)
    barrier.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    cpu = CpuSample.take(None).since(before)
    app.close()
    return {"rate": sum(done) / elapsed, "commands": sum(done), "errors": sum(errors), "cpu": cpu}
