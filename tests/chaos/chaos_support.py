"""The chaos drills' harness: the production stack (``python -m cli.prod``, as ``make prod`` runs it),
a write load on it, faults, and the checks after each fault.

Everything is bounded — requests by count and time, waits by deadlines — and every connection goes
to 127.0.0.1. A write is *acknowledged* when the API answered 2xx; the load keeps each one (its
Idempotency-Key, body and the id and version written) so the checks can find it again.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[2]
CASELEDGER = str(Path(sys.executable).parent / "caseledger")
REQUEST_TIMEOUT = 15.0  # seconds: the client's own bound; the API waits up to 10 s on a key still held (then 409)


def until(condition: Callable[[], Any], timeout: float, what: str, pause: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(pause)


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (gunicorn's workers of its master)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def call(port: int, method: str, path: str, token: str | None = None, body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    """One request on a new connection: (status, headers, JSON body or None); status 0 when the
    connection failed (nothing listening, reset)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    sent = dict(headers or {})
    if token:
        sent["Authorization"] = f"Bearer {token}"
    payload = None
    if body is not None:
        payload, sent["Content-Type"] = json.dumps(body).encode(), "application/json"
    try:
        conn.request(method, path, body=payload, headers=sent)
        response = conn.getresponse()
        data = response.read()
        got = {k.lower(): v for k, v in response.getheaders()}
        parsed = json.loads(data) if data and "json" in got.get("content-type", "") else None
        return response.status, got, parsed
    except (OSError, http.client.HTTPException):
        return 0, {}, None
    finally:
        conn.close()


def issue_token(env: dict[str, str]) -> str:
    """An agent's API token, issued straight into the ledger (created if there is none yet)."""
    from ledger.bootstrap import create_ledger
    from services.tokens import TokenService, system_context

    ledger, _ = create_ledger(env)
    try:
        return TokenService(ledger).issue("agent-li", "agent", "hotline", ctx=system_context("chaos-setup"))[0]
    finally:
        ledger.close()


class Stack:
    """``python -m cli.prod`` in a subprocess (its own session: stopped with SIGTERM, like Ctrl-C)."""

    def __init__(self, env: dict[str, str], workdir: Path, *, workers: int = 2):
        from cli.throwaway_pg import free_port

        self.port = free_port()
        self.workdir = workdir
        self.env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(workdir), **env,
                    "PORT": str(self.port), "WEB_CONCURRENCY": str(workers)}
        self.workers = workers
        self.out_path, self.err_path = workdir / "stack.out", workdir / "stack.err"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> float:
        started = time.monotonic()
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.process = subprocess.Popen([sys.executable, "-m", "cli.prod"], env=self.env, cwd=REPO, stdout=out,
                                            stderr=err, start_new_session=True)
        until(lambda: self._healthy() and len(self.worker_pids()) == self.workers
              and {"web", "projections", "scheduler"} <= {e["process"] for e in self.events("started")},
              timeout, "the stack to start", pause=0.2)
        return time.monotonic() - started

    def _healthy(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.tail()
        return call(self.port, "GET", "/healthz")[0] == 200

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in self.err_path.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"supervisor"' in line:
                event = json.loads(line)
                if kind is None or event["event"] == kind:
                    found.append(event)
        return found

    def pid(self, name: str) -> int:
        return [e for e in self.events("started") if e["process"] == name][-1]["pid"]

    def worker_pids(self) -> list[int]:
        try:
            return [pid for pid in children(self.pid("web")) if alive(pid)]
        except IndexError:
            return []

    def tail(self, lines: int = 40) -> str:
        text = self.out_path.read_text(errors="replace").splitlines() + self.err_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 60) -> int:
        if self.process is None:
            return 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise AssertionError(f"the stack did not stop within {timeout} s:\n{self.tail()}") from None


@dataclass(frozen=True)
class Ack:
    key: str
    path: str
    body: dict[str, Any]
    id: str
    version: int
    at: float


@dataclass(frozen=True)
class Retry:
    path: str
    body: dict[str, Any]
    key: str
    attempt: int
    not_before: float


@dataclass
class Load:
    """Writer threads posting real commands, each with an Idempotency-Key. A request that got no
    answer, a 5xx or a 409 is sent again *with the same key*, as a careful client would — by
    retrier threads, so that a key still held by a request that died (409 after the server's wait,
    until its lease ends) does not hold up the new writes."""

    port: int
    token: str
    writers: int = 2
    retriers: int = 2
    max_requests: int = 20_000  # a bound whatever the duration
    retries: int = 200  # per key: with the server's 10 s wait on a held key, longer than any lease
    acks: list[Ack] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)
    failures: list[tuple[float, int, float]] = field(default_factory=list)  # (when, status, seconds)
    unresolved: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)  # given up: (path, body, key)
    requests: int = 0
    busy: int = 0

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.running = threading.Event()
        self.done = threading.Event()
        self.pending: queue.Queue[Retry] = queue.Queue()
        self.threads = [threading.Thread(target=self._write, daemon=True, name=f"load-{i}") for i in range(self.writers)]
        self.threads += [threading.Thread(target=self._retry, daemon=True, name=f"retry-{i}")
                         for i in range(self.retriers)]

    def start(self) -> Load:
        self.running.set()
        for thread in self.threads:
            thread.start()
        return self

    def pause(self) -> None:
        """Stop sending: requests under way finish; the keys still to retry are given up (``unresolved``)."""
        self.running.clear()
        until(lambda: self.busy == 0, REQUEST_TIMEOUT + 5, "the load's requests under way to finish")
        while True:
            try:
                item = self.pending.get_nowait()
            except queue.Empty:
                return
            with self.lock:
                self.unresolved.append((item.path, item.body, item.key))

    def resume(self) -> None:
        self.running.set()

    def stop(self) -> None:
        self.done.set()
        self.running.set()
        for thread in self.threads:
            thread.join(timeout=REQUEST_TIMEOUT * 2)

    def first_ack_after(self, moment: float) -> float | None:
        with self.lock:
            return min((a.at for a in self.acks if a.at > moment), default=None)

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time without an acknowledged write between ``start`` and ``end``."""
        with self.lock:
            moments = sorted([start, *(a.at for a in self.acks if start < a.at < end), end])
        return max(b - a for a, b in zip(moments, moments[1:]))

    def failed_between(self, start: float, end: float) -> list[tuple[float, int, float]]:
        with self.lock:
            return [f for f in self.failures if start <= f[0] <= end]

    def _claim_turn(self) -> bool:
        self.running.wait()
        with self.lock:
            if self.done.is_set() or self.requests >= self.max_requests:
                return False
            self.busy += 1
            return True

    def _write(self) -> None:
        n = 0
        while self._claim_turn():
            try:
                n += 1
                with self.lock:
                    customers = [a.id for a in self.acks[-50:] if a.path == "/customers"]
                if customers and n % 2 == 0:
                    path, body = "/tickets", {"customer_id": customers[-1], "channel": "web",
                                              "summary": f"chaos {uuid.uuid4().hex[:8]}"}
                else:
                    path, body = "/customers", {"kind": "individual", "tier": "vip",
                                                "contact": {"name": "赵六", "phone": f"138{n % 100_000_000:08d}"}}
                if not self._send(Retry(path, body, f"chaos-{uuid.uuid4()}", 0, 0.0)):
                    time.sleep(0.1)  # nothing listening (the API restarting): no busy loop
            finally:
                with self.lock:
                    self.busy -= 1

    def _retry(self) -> None:
        while not self.done.is_set():
            try:
                item = self.pending.get(timeout=0.2)
            except queue.Empty:
                continue
            time.sleep(max(item.not_before - time.monotonic(), 0))
            if not self.running.is_set() or not self._claim_turn():
                with self.lock:
                    self.unresolved.append((item.path, item.body, item.key))
                continue
            try:
                self._send(item)
            finally:
                with self.lock:
                    self.busy -= 1

    def _send(self, item: Retry) -> bool:
        """Send once; True if acknowledged. A failure is queued for the retriers."""
        started = time.monotonic()
        status, _, answer = call(self.port, "POST", item.path, self.token, item.body, {"Idempotency-Key": item.key})
        seconds = time.monotonic() - started
        with self.lock:
            self.requests += 1
            self.outcomes[status] += 1
            if 200 <= status < 300:
                self.acks.append(Ack(item.key, item.path, item.body, answer["id"], int(answer.get("version") or 1),
                                     time.monotonic()))
                return True
            self.failures.append((started, status, seconds))
        if status not in (0, 409, 502, 503, 504):
            return False  # a refusal (4xx) is an answer: not sent again
        if item.attempt + 1 >= self.retries or self.pending.qsize() >= 1000:
            with self.lock:
                self.unresolved.append((item.path, item.body, item.key))
            return False
        self.pending.put(Retry(item.path, item.body, item.key, item.attempt + 1, time.monotonic() + 0.2))
        return False
