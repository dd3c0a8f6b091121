"""Job history: one row per run of a scheduled compliance job, from its ``JobRun`` events.

What ran, for which business time (``as_of``), on which scheduler instance, triggered how
(schedule or manual), with which counts, details or failure reason, and the wall-clock times it
was recorded at (``started_wall`` / ``ended_wall``; their difference is the run's duration).
"""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

from projections.jsontext import json_writer
from projections.rowcache import RowCache
from projections.runtime import Projection, ProjectionRunner
from projections.store import Cursor, Table
from projections.timeutil import occurred_stamp, stamp

JOB_RUN_TABLE = Table(
    "rm_job_run",
    columns=(("run_id", "TEXT"), ("seq", "BIGINT"), ("job", "TEXT"), ("trigger_kind", "TEXT"), ("instance", "TEXT"),
             ("status", "TEXT"), ("as_of", "TEXT"), ("started_wall", "TEXT"), ("ended_wall", "TEXT"),
             ("counts", "TEXT"), ("details", "TEXT"), ("reason", "TEXT"), ("version", "BIGINT")),
    key=("run_id",), indexes=(("seq",), ("job", "seq"), ("status", "seq")))
T = TypeVar("T")
log = logging.getLogger("caseledger.scheduler")


_json = json_writer(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class JobRuns(Projection):
    name = "job_runs"
    rebuild_weight = 1
    tables = (JOB_RUN_TABLE,)

    def on_JobRun_Started(self, e: Any, position: int, rows: RowCache) -> None:
        rows.put(JOB_RUN_TABLE.name, {
            "run_id": str(e.originator_id), "seq": position, "job": e.job, "trigger_kind": e.trigger,
            "instance": e.instance, "status": "running", "as_of": occurred_stamp(e), "started_wall": stamp(e.timestamp),
            "ended_wall": None, "counts": "{}", "details": "{}", "reason": None, "version": e.originator_version})

    def _end(self, e: Any, rows: RowCache, **changes: Any) -> None:
        row = rows.get(JOB_RUN_TABLE.name, str(e.originator_id))
        if row is None:
            raise LookupError(f"rm_job_run has no row for {e.originator_id}; its Started event was not seen")
        rows.put(JOB_RUN_TABLE.name, {**row, **changes, "ended_wall": stamp(e.timestamp), "version": e.originator_version})

    def on_JobRun_Finished(self, e: Any, position: int, rows: RowCache) -> None:
        self._end(e, rows, status="finished", counts=_json(e.counts), details=_json(e.details))

    def on_JobRun_Failed(self, e: Any, position: int, rows: RowCache) -> None:
        self._end(e, rows, status="failed", reason=e.reason)


@contextmanager
def job_history(ledger: Any) -> Iterator[Cursor]:
    """A read cursor on the job history, caught up with the log as far as it goes: a damaged log
    stops read models, and the jobs that report on it must still run on what is known."""
    runner = ProjectionRunner(ledger, [JobRuns(ledger)])
    try:
        runner.ensure_tables()
        try:
            runner.catch_up()
        except Exception:  # noqa: BLE001 - see the docstring
            log.warning("job history could not catch up with the log; using it as far as it got", exc_info=True)
        with runner.db.reading() as cur:
            yield cur
    finally:
        runner.close()


def latest_result(ledger: Any, job: str, parse: Callable[[dict[str, Any]], T | None]) -> T | None:
    """The newest finished run of ``job`` whose details ``parse`` accepts."""
    with job_history(ledger) as cur:
        rows = cur.execute(f"SELECT details FROM {JOB_RUN_TABLE.name} WHERE job = ? AND status = 'finished' "
                           "ORDER BY seq DESC", (job,)).fetchall()
    for (details,) in rows:
        found = parse(json.loads(details))
        if found is not None:
            return found
    return None
