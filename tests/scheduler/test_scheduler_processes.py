"""Two real scheduler processes on one database: one leads, the other waits; SIGKILL the leader and
the other takes over within a bounded time; no slot runs twice and no breach is recorded twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

TAKEOVER_BOUND = 10.0  # seconds; the follower retries every 0.3 s here (5 s by default)


def _wait_for(condition, timeout: float, what: str):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _pid(run) -> int:  # noqa: ANN001
    return int(run.instance.rsplit(":", 1)[1])


def test_one_leader_runs_the_jobs_and_a_follower_takes_over(ledger, env, jobs, at, customer, tmp_path: Path):
    ticket = str(ledger.open_ticket(at(0), customer_id=customer, channel="phone").id)  # long overdue by now
    proc_env = {**os.environ, **env, "CASELEDGER_SCHEDULER_JOBS": "sla_clocks",
                "CASELEDGER_SCHEDULE_SLA_CLOCKS": "every 1s", "CASELEDGER_SCHEDULER_RETRY_SECONDS": "0.3",
                "CASELEDGER_SCHEDULER_CHECK_SECONDS": "0.3"}
    procs = {}
    for name in ("a", "b"):
        log = (tmp_path / f"scheduler-{name}.log").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "scheduler"], env=proc_env, stdout=log,
                                stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2])
        procs[proc.pid] = proc
    try:
        finished = lambda: jobs.events("JobRun.Finished")  # noqa: E731
        _wait_for(lambda: len(finished()) >= 3, 60, "three finished runs")
        started = jobs.events("JobRun.Started")
        leaders = {_pid(run) for run in started}
        assert len(leaders) == 1 and leaders <= set(procs), f"both ran jobs: {leaders}"
        leader = leaders.pop()
        follower = next(pid for pid in procs if pid != leader)
        assert procs[follower].poll() is None, "the follower must still be waiting"

        os.kill(leader, signal.SIGKILL)
        procs[leader].wait(10)
        killed_at = time.monotonic()
        _wait_for(lambda: any(_pid(r) == follower for r in jobs.events("JobRun.Started")), TAKEOVER_BOUND,
                  f"the follower to take over within {TAKEOVER_BOUND} s")
        assert time.monotonic() - killed_at <= TAKEOVER_BOUND
        _wait_for(lambda: sum(1 for r in jobs.events("JobRun.Started") if _pid(r) == follower) >= 2, 30,
                  "two runs by the new leader")
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            proc.wait(30)

    started = jobs.events("JobRun.Started")
    slots = [run.meta["occurred_at"] for run in started]
    assert len(slots) == len(set(slots)), "a slot ran twice"
    assert {_pid(run) for run in started} == {leader, follower}
    first_follower = next(i for i, run in enumerate(started) if _pid(run) == follower)
    assert all(_pid(run) == follower for run in started[first_follower:]), "the dead leader ran again"
    ended = {e.originator_id for name in ("JobRun.Finished", "JobRun.Failed") for e in jobs.events(name)}
    assert {run.originator_id for run in started} == ended  # a run the kill interrupted is recorded as abandoned
    assert all("abandoned" in e.reason for e in jobs.events("JobRun.Failed"))
    clocks = ("ticket.acceptance", "ticket.first_response", "ticket.resolution")
    assert jobs.breaches() == {(ticket, clock, 0) for clock in clocks}
    assert sorted(rung for _, rung in jobs.escalations()) == ["management"] * 3 + ["team_lead"] * 3
