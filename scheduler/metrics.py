"""What the scheduler tells the metrics endpoint (``api/observability.py``): the last verification.

Read from the job history read model (``projections.job_runs``), caught up first, so every API
worker reports the same outcome whichever scheduler instance ran it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from domain.findings import INTEGRITY_OK
from projections.job_runs import JOB_RUN_TABLE, job_history
from projections.timeutil import parse

#: Jobs that verify the transparency log (incrementally, and in full).
VERIFICATION_JOBS = ("integrity", "integrity_full")


def last_verification(ledger: Any) -> tuple[bool, datetime] | None:
    """(passed, when it finished) of the latest finished verification run, or None if none ran yet."""
    with job_history(ledger) as cur:
        row = cur.execute(f"SELECT details, ended_wall FROM {JOB_RUN_TABLE.name} WHERE status = 'finished' AND job IN "
                          f"({', '.join('?' for _ in VERIFICATION_JOBS)}) ORDER BY seq DESC LIMIT 1",
                          VERIFICATION_JOBS).fetchone()
    if row is None:
        return None
    return bool(json.loads(row[0]).get(INTEGRITY_OK)), parse(row[1])
