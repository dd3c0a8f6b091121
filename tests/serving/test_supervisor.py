"""The supervisor of ``make prod`` (``cli.supervisor``) on stand-in processes (shell one-liners): a
process that dies is restarted with a doubling backoff, the others go on untouched, every restart
is one JSON line, and stopping ends everything, a process that ignores SIGTERM included."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time

from cli.supervisor import Backoff, Supervisor

FAST = Backoff(initial=0.05, maximum=0.2, stable_after=0.6)


def events(stream: io.StringIO, kind: str | None = None) -> list[dict]:
    found = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    return [e for e in found if kind is None or e["event"] == kind]


def until(condition, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


class Running:
    """A supervisor run in a thread (signal handlers are the main thread's: it is stopped with ``stop``)."""

    def __init__(self, processes: dict[str, str], **kwargs):  # noqa: ANN003
        self.out, self.log = io.StringIO(), io.StringIO()
        self.supervisor = Supervisor(processes, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, out=self.out,
                                     events=self.log, **kwargs)
        self.thread = threading.Thread(target=self.supervisor.run, daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.supervisor.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()

    def pid(self, name: str) -> int:
        return [e for e in events(self.log, "started") if e["process"] == name][-1]["pid"]


def test_a_crashing_process_is_restarted_with_doubling_backoff_and_the_others_stay(tmp_path):
    with Running({"crash": "sh -c 'echo up; exit 3'", "steady": "sleep 60"}, backoff=FAST) as run:
        until(lambda: len([e for e in events(run.log, "restart") if e["process"] == "crash"]) >= 5)
        steady = run.pid("steady")
    exits = [e for e in events(run.log, "restart") if e["process"] == "crash"]
    assert [e["attempt"] for e in exits[:5]] == [1, 2, 3, 4, 5]
    assert [e["backoff_seconds"] for e in exits[:5]] == [0.05, 0.1, 0.2, 0.2, 0.2]
    assert {e["exit_code"] for e in exits} == {3}
    assert [e["pid"] for e in events(run.log, "started") if e["process"] == "steady"] == [steady]  # never restarted
    assert "crash  | up" in run.out.getvalue()  # each line prefixed with its process (padded to the longest name)
    assert events(run.log, "stopped")[0]["exit_codes"]["steady"] == -signal.SIGTERM


def test_a_killed_process_comes_back_and_a_long_run_resets_the_backoff():
    with Running({"worker": "sleep 60", "other": "sleep 60"}, backoff=FAST) as run:
        until(lambda: len(events(run.log, "started")) == 2)
        other = run.pid("other")
        for expected_attempt in (1, 2):
            first = run.pid("worker")
            os.kill(first, signal.SIGKILL)
            until(lambda: run.pid("worker") != first)  # noqa: B023 - waited for right here
            exited = events(run.log, "restart")[-1]
            assert (exited["process"], exited["pid"], exited["exit_code"], exited["signal"], exited["attempt"]) == \
                ("worker", first, -9, "SIGKILL", expected_attempt)
        time.sleep(FAST.stable_after + 0.1)  # up long enough: the next death starts a new series
        os.kill(run.pid("worker"), signal.SIGKILL)
        until(lambda: len(events(run.log, "restart")) == 3)
        assert events(run.log, "restart")[-1]["attempt"] == 1
        assert run.pid("other") == other


def test_stopping_ends_every_process_even_one_that_ignores_sigterm():
    stubborn = "sh -c 'trap \"\" TERM; while true; do sleep 0.1; done'"
    with Running({"stubborn": stubborn, "polite": "sleep 60"}, grace=0.5) as run:
        until(lambda: len(events(run.log, "started")) == 2)
        pids = [run.pid("stubborn"), run.pid("polite")]
    stopped = events(run.log, "stopped")[0]["exit_codes"]
    assert stopped == {"stubborn": -signal.SIGKILL, "polite": -signal.SIGTERM}
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"{pid} still runs")


def test_what_a_dead_process_leaves_in_its_group_is_stopped_too(tmp_path):
    # As gunicorn's workers when their master is killed: a child in the group outlives its parent.
    marker = tmp_path / "orphan.pid"
    command = f"sh -c 'sleep 60 & echo $! > {marker}; wait'"
    with Running({"master": command}, backoff=Backoff(initial=5.0)) as run:
        until(marker.exists)
        until(lambda: marker.read_text().strip().isdigit())
        orphan = int(marker.read_text())
        # The child can write its marker before the supervisor has logged that it started it.
        until(lambda: any(e["process"] == "master" for e in events(run.log, "started")))
        os.kill(run.pid("master"), signal.SIGKILL)

        def gone() -> bool:
            try:
                os.kill(orphan, 0)
            except ProcessLookupError:
                return True
            return False

        until(gone)


def test_ctrl_c_stops_every_process_and_exits_0(tmp_path):
    """The supervisor in a process of its own, as ``make prod`` runs it: SIGINT (Ctrl-C) is handled
    (no traceback), every process gets SIGTERM, and the exit code is 0."""
    import subprocess
    import sys

    script = ("import sys; from cli.supervisor import Supervisor; "
              "sys.exit(Supervisor({'one': 'sleep 60', 'two': 'sleep 60'}, {'PATH': '/usr/bin:/bin'}).run())")
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []

    def started() -> bool:
        line = process.stderr.readline()
        seen.append(line)
        return sum('"event": "started"' in text for text in seen) == 2

    until(started)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    stopped = [json.loads(line) for line in err.splitlines() if '"stopped"' in line][0]
    assert stopped["exit_codes"] == {"one": -signal.SIGTERM, "two": -signal.SIGTERM}
    assert "Traceback" not in err
