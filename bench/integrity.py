"""Integrity benchmarks: the cost of the Merkle log on append, verification speed, proof growth.

Every figure is a ratio against a baseline measured in the same run on the same database:
- append: our recorder (event + leaf + nodes in one transaction) vs eventsourcing's own recorder,
  one event per transaction and 100 per transaction;
- verify: full ``TransparencyLog.verify`` vs plain hashlib SHA-256 over the same leaf bytes;
- proofs: inclusion and consistency proof time at growing tree sizes (should grow like log n).

    python -m bench.integrity [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
import uuid

from eventsourcing.persistence import StoredEvent

from bench.common import fresh_database_url, machine, postgres_dsn, print_table, timed
from ledger.bootstrap import Settings, transparency_log
from ledger.keys import LogKeys

STATE = b'{"meta":{"actor_id":"agent-li","actor_role":"agent","occurred_at":"2025-09-01T09:00:00+08:00",' \
        b'"policy":"sop-2025@1","request_id":"r","reason":null},"channel":"phone","personal":{"subject":"c",' \
        b'"fields":{"content":"\xe5\xae\xbd\xe5\xb8\xa6\xe6\x96\xad\xe4\xba\x86"}}}'


def recorder_for(url: str, merkle: bool):
    """A bare application recorder of either kind on ``url``."""
    from eventsourcing.persistence import InfrastructureFactory
    from eventsourcing.utils import Environment

    env = Settings.from_env({"CASELEDGER_DATABASE_URL": url}).persistence_env()
    if not merkle:
        env.pop("APPLICATION_RECORDER_TOPIC")
    factory = InfrastructureFactory.construct(Environment("CaseLedger", env))
    return factory, factory.application_recorder()


def events(n: int) -> list[StoredEvent]:
    oid = uuid.uuid4()
    return [StoredEvent(originator_id=oid, originator_version=v + 1, topic="domain.interaction:Interaction.Received",
                        state=STATE) for v in range(n)]


def append_rate(recorder, total: int, per_transaction: int) -> float:
    def run() -> None:
        for _ in range(total // per_transaction):
            recorder.insert_events(events(per_transaction))

    return total / timed(run)


def bench_append(backend: str, dsn: str | None, quick: bool) -> list[list[object]]:
    rows = []
    for per_tx, total in ((1, 1000 if quick else 5000), (100, 20000 if quick else 100000)):
        rates = {}
        for merkle in (False, True):
            factory, recorder = recorder_for(fresh_database_url(backend, dsn), merkle)
            append_rate(recorder, min(total, 500), per_tx)  # warm up
            rates[merkle] = append_rate(recorder, total, per_tx)
            factory.close()
        rows.append([backend, per_tx, total, f"{rates[False]:,.0f}", f"{rates[True]:,.0f}",
                     f"{rates[True] / rates[False]:.2f}×", "≥ 0.8×: " + ("met" if rates[True] / rates[False] >= 0.8 else "missed")])
    return rows


def bench_verify_and_proofs(backend: str, dsn: str | None, sizes: list[int]) -> tuple[list, list]:
    from ledger.bootstrap import build

    verify_rows, proof_rows = [], []
    url = fresh_database_url(backend, dsn)
    home = f"/tmp/caseledger-bench-keys-{uuid.uuid4().hex[:8]}"
    env = {"CASELEDGER_DATABASE_URL": url, "CASELEDGER_HOME": home}
    LogKeys.from_env(env).init()
    ledger = build(env)
    log = transparency_log(ledger, env)
    done = 0
    for size in sizes:
        while done < size:
            batch = min(1000, size - done)
            ledger.recorder.insert_events(events(batch))
            done += batch
        if size == sizes[0]:
            from datetime import datetime, timezone
            log.publish_checkpoint(datetime.now(timezone.utc))
        proof_rows.append([backend, f"{size:,}", *proof_times(log, size)])
    leaf_bytes = [r.leaf_bytes for r in log.leaf_records()]
    hash_seconds = timed(lambda: [hashlib.sha256(b"\x00" + b).digest() for b in leaf_bytes])
    verify_seconds = timed(lambda: log.verify())
    assert log.verify().ok
    verify_rows.append([backend, f"{done:,}", f"{done / verify_seconds:,.0f}", f"{done / hash_seconds:,.0f}",
                        f"{hash_seconds / verify_seconds:.2f}×",
                        "≥ 0.5×: " + ("met" if hash_seconds / verify_seconds >= 0.5 else "missed")])
    ledger.close()
    return verify_rows, proof_rows


def proof_times(log, size: int, samples: int = 50) -> list[str]:
    import random

    rng = random.Random(size)
    inclusion, consistency = [], []
    for _ in range(samples):
        index = rng.randrange(size)
        started = time.perf_counter()
        log.inclusion_proof(index, size)
        inclusion.append(time.perf_counter() - started)
        old = rng.randrange(1, size)
        started = time.perf_counter()
        log.consistency_proof(old, size)
        consistency.append(time.perf_counter() - started)
    return [f"{statistics.median(inclusion) * 1000:.2f} ms", f"{statistics.median(consistency) * 1000:.2f} ms"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="CI-sized run")
    args = parser.parse_args()
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    out = [f"Machine: {machine()}\n"]
    with postgres_dsn() as dsn:
        append_rows, verify_rows, proof_rows = [], [], []
        for backend in ("sqlite", "postgres"):
            append_rows += bench_append(backend, dsn, args.quick)
            v, p = bench_verify_and_proofs(backend, dsn, sizes)
            verify_rows += v
            proof_rows += p
    out.append(print_table("Append: Merkle-logging recorder vs eventsourcing's recorder (events/s)",
                           ["backend", "events/tx", "events", "raw", "with log", "ratio", "target"], append_rows))
    out.append(print_table("Full verification vs plain SHA-256 over the same leaf bytes (leaves/s)",
                           ["backend", "leaves", "verify", "hashlib", "ratio", "target"], verify_rows))
    out.append(print_table("Proof time (median of 50) by tree size",
                           ["backend", "leaves", "inclusion", "consistency"], proof_rows))


if __name__ == "__main__":
    main()
