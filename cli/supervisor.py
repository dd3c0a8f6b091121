"""``make prod``'s supervisor: the Procfile's processes, each restarted when it dies, all stopped together.

honcho (which ``make prod`` used before) stops every process when one exits: killing the projection
runner took the API and the scheduler down with it, and nothing brought them back. Here each
process is on its own:

- **A process that exits is started again** — whatever its exit code: these are services — after
  a backoff that doubles with each consecutive failure, from :attr:`Backoff.initial` (0.5 s) up to
  :attr:`Backoff.maximum` (30 s). A process that stayed up :attr:`Backoff.stable_after` seconds
  (60) before it died starts a new series at 0.5 s: a crash a day is not a crash loop.
- **Every supervisor event is one JSON line** on stderr (``started``, ``restart``, ``stopping``,
  ``stopped``); ``restart`` — written when a process is found dead — carries the process, its pid,
  exit code (negative: killed by that signal, also named), how long it was up, the attempt and the
  backoff before it is started again.
- **Ctrl-C or SIGTERM stops all of them**: SIGTERM to each process group, SIGKILL to whatever is
  left after :attr:`Supervisor.grace` seconds. Each process runs in its own session, so a Ctrl-C in
  the terminal reaches the supervisor alone and the processes stop in order, not in a scramble.

A process's group is signalled, not just the process: gunicorn's workers are in its master's group,
and when the master is killed (``kill -9``) its orphaned workers would otherwise keep the port until
they notice. Output: every line of every process on stdout, prefixed with the time and its name.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Mapping


@dataclass(frozen=True)
class Backoff:
    initial: float = 0.5
    maximum: float = 30.0
    stable_after: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds before restart number ``attempt`` (1, 2, …) of one series of failures."""
        return min(self.initial * 2 ** (attempt - 1), self.maximum)


@dataclass
class Child:
    name: str
    command: str
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    attempt: int = 0  # consecutive failures so far (0: the last run was long enough)
    restart_at: float | None = None
    groups: set[int] = field(default_factory=set)  # process groups that may still hold members


class Supervisor:
    def __init__(self, processes: Mapping[str, str], env: Mapping[str, str], *, cwd: Path | None = None,
                 backoff: Backoff = Backoff(), grace: float = 20.0, out: IO[str] | None = None,
                 events: IO[str] | None = None):
        self.children = [Child(name, command) for name, command in processes.items()]
        # Unbuffered Python: a process's lines appear as it writes them, not when its buffer fills.
        self.env = {**env, "PYTHONUNBUFFERED": "1"}
        self.cwd = cwd
        self.backoff = backoff
        self.grace = grace
        self.out = out or sys.stdout
        self.events = events or sys.stderr
        self.stop = threading.Event()
        self._write_lock = threading.Lock()
        self._width = max((len(child.name) for child in self.children), default=4)

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> int:
        """Start every process and keep them running until SIGINT/SIGTERM (or :attr:`stop`); 0 then."""
        previous = self._install_signal_handlers()
        try:
            for child in self.children:
                self._start(child)
            while not self.stop.is_set():
                self._tend(time.monotonic())
                self.stop.wait(0.1)
        finally:
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def _tend(self, now: float) -> None:
        for child in self.children:
            self._forget_empty_groups(child)
            if child.process is not None and (code := child.process.poll()) is not None:
                self._exited(child, code, now)
            if child.process is None and child.restart_at is not None and now >= child.restart_at:
                self._start(child)

    def _exited(self, child: Child, code: int, now: float) -> None:
        assert child.process is not None
        uptime = now - child.started_at
        child.attempt = 1 if uptime >= self.backoff.stable_after else child.attempt + 1
        delay = self.backoff.delay(child.attempt)
        self._event("restart", process=child.name, pid=child.process.pid, exit_code=code,
                    signal=signal.Signals(-code).name if code < 0 and -code in signal.valid_signals() else None,
                    uptime_seconds=round(uptime, 3), attempt=child.attempt, backoff_seconds=delay)
        # What it leaves behind (gunicorn workers orphaned by a killed master) goes too.
        self._signal_groups(child, signal.SIGTERM)
        child.process = None
        child.restart_at = now + delay

    def _start(self, child: Child) -> None:
        child.restart_at = None
        try:
            # exec: the pid we watch is the program's own, not a shell's; the shell expands ${PORT:-8000}.
            process = subprocess.Popen(["/bin/sh", "-c", f"exec {child.command}"], env=self.env, cwd=self.cwd,
                                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       start_new_session=True, text=True, errors="replace", bufsize=1)
        except OSError as e:  # e.g. out of processes: try again later, like any other failure
            child.attempt += 1
            delay = self.backoff.delay(child.attempt)
            self._event("start-failed", process=child.name, error=str(e), attempt=child.attempt, backoff_seconds=delay)
            child.restart_at = time.monotonic() + delay
            return
        child.process, child.started_at = process, time.monotonic()
        child.groups.add(process.pid)  # start_new_session: its group id is its pid
        threading.Thread(target=self._pump, args=(child.name, process.stdout), daemon=True,
                         name=f"output-{child.name}").start()
        self._event("started", process=child.name, pid=process.pid, command=child.command)

    # -- stopping ---------------------------------------------------------------------------------
    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}  # only the main thread may; a caller in another thread sets ``stop`` itself
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, self._on_signal)
        return previous

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.stop.set()

    def _shutdown(self) -> None:
        running = [child for child in self.children if child.process is not None]
        self._event("stopping", processes=[child.name for child in running])
        for child in self.children:
            self._signal_groups(child, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(timeout=max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                pass
        codes = {}
        for child in self.children:
            self._signal_groups(child, signal.SIGKILL)  # stragglers, and anything they left behind
            if child.process is not None:
                codes[child.name] = child.process.wait()
                child.process = None
        self._event("stopped", exit_codes=codes)

    @staticmethod
    def _forget_empty_groups(child: Child) -> None:
        """A group id with no member left may be reused by an unrelated process: stop tracking it."""
        current = child.process.pid if child.process is not None else None
        for group in list(child.groups - {current}):
            try:
                os.killpg(group, 0)
            except (ProcessLookupError, PermissionError):
                child.groups.discard(group)

    @staticmethod
    def _signal_groups(child: Child, sig: int) -> None:
        for group in list(child.groups):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:  # nobody left in it
                child.groups.discard(group)
            except PermissionError:
                child.groups.discard(group)  # the id was reused by someone else's group: not ours to signal

    # -- output -----------------------------------------------------------------------------------
    def _pump(self, name: str, stream: IO[str]) -> None:
        label = name.ljust(self._width)
        for line in stream:
            self._write(self.out, f"{time.strftime('%H:%M:%S')} {label} | {line.rstrip()}")
        stream.close()

    def _event(self, event: str, **fields: Any) -> None:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "event": event, "supervisor": os.getpid(),
                  **{key: value for key, value in fields.items() if value is not None}}
        self._write(self.events, json.dumps(record))

    def _write(self, stream: IO[str], line: str) -> None:
        with self._write_lock:
            try:
                stream.write(line + "\n")
                stream.flush()
            except (OSError, ValueError):  # the terminal went away: the processes go on regardless
                pass
