"""API latency under load: p50/p95/p99 of a command and a read against the production server.

    python -m bench.api_latency [--quick] [--clients 16] [--workers N] [--threads T]

Starts ``caseledger serve --prod`` (gunicorn, several workers) on a fresh PostgreSQL schema
(``CASELEDGER_TEST_PG_DSN`` when set, else a throwaway cluster), creates a team lead's token with
``caseledger tokens create`` (an agent registers the customer, a team lead opens, reads and
classifies the tickets) and a few hundred tickets over HTTP, then runs the load generator
in a separate process on loopback: ``--clients`` threads, each with its own keep-alive
connection (``http.client``), sending requests back to back (a closed loop: a client sends its
next request when the previous answer arrives). Three phases, each bounded in requests and in
seconds:

- baseline: ``GET /healthz`` — the floor set by the server, HTTP and the load generator itself;
- read: ``GET /tickets/{id}`` (authorised, masked, access-logged where it discloses, ETag);
- command: ``POST /tickets/{id}/classify`` — load, decide, append one event with its Merkle leaf.

The load generator competes with the server and PostgreSQL for the same cores; throughput and
the baseline row show how much.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import fresh_database_url, machine, postgres_dsn, print_table
from bench.cpu_split import CpuSample, per_request_ms
from bench.raw_threads import raw_command_rate
from cli.throwaway_pg import free_port
from ledger.settings import Settings

CASELEDGER = str(Path(sys.executable).parent / "caseledger")
TARGETS_MS = {"command": 25.0, "read": 10.0}
PRIORITIES = ("urgent", "important", "normal")


# -- the load generator (runs in its own process) -------------------------------------------------------
def _request(conn: http.client.HTTPConnection, method: str, path: str, token: str, body: Any = None) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    payload = None
    if body is not None:
        payload = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=payload, headers=headers)
    response = conn.getresponse()
    response.read()
    return response.status


def _client(port: int, token: str, phase: str, tickets: list[str], count: int, deadline: float,
            start: threading.Barrier, out: list[tuple[float, int]]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    rng = random.Random()
    start.wait()
    for _ in range(count):
        if time.perf_counter() > deadline:
            break
        ticket = rng.choice(tickets)
        if phase == "baseline":
            method, path, body = "GET", "/healthz", None
        elif phase == "read":
            method, path, body = "GET", f"/tickets/{ticket}", None
        else:
            method, path = "POST", f"/tickets/{ticket}/classify"
            body = {"priority": rng.choice(PRIORITIES), "complexity": "general", "high_risk": False}
        started = time.perf_counter()
        try:
            status = _request(conn, method, path, token, body)
        except (OSError, http.client.HTTPException):
            status = 0
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        out.append((time.perf_counter() - started, status))
    conn.close()


def load_generator(pipe: Any, port: int, token: str, tickets: list[str], clients: int, requests: int,
                   seconds: float, server_pid: int | None = None) -> None:
    """Every phase with ``clients`` threads; sends back {phase: (latencies, statuses, elapsed, cpu)},
    cpu: where the phase's CPU went (``bench.cpu_split``: server tree, this generator, the rest)."""
    results = {}
    for phase in ("warmup", "baseline", "read", "command"):
        # Each client its own tickets: concurrent commands on one ticket would be refused as
        # concurrent updates (409), which is correct but not what we measure.
        own = [tickets[i::clients] for i in range(clients)]
        per_client = max(requests // clients, 1) if phase != "warmup" else 20
        outs: list[list[tuple[float, int]]] = [[] for _ in range(clients)]
        start = threading.Barrier(clients + 1)
        deadline = time.perf_counter() + seconds + 5
        threads = [threading.Thread(target=_client, args=(port, token, "read" if phase == "warmup" else phase,
                                                          own[i], per_client, deadline, start, outs[i]))
                   for i in range(clients)]
        for t in threads:
            t.start()
        before = CpuSample.take(server_pid)
        start.wait()
        began = time.perf_counter()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - began
        cpu = CpuSample.take(server_pid).since(before)
        samples = [s for out in outs for s in out]
        results[phase] = ([s[0] for s in samples], [s[1] for s in samples], elapsed, cpu)
    pipe.send(results)
    pipe.close()


# -- the server and its data ----------------------------------------------------------------------------
def _wait_ready(port: int, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the server exited during start-up")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not become ready")


def _token(env: dict[str, str], actor: str, role: str) -> str:
    """A token for ``actor``, created by the ledger's first administrator (``tokens bootstrap``, once):
    creating a token is itself an act of a token holder."""
    if "CASELEDGER_TOKEN" not in env:
        done = subprocess.run([CASELEDGER, "tokens", "bootstrap", "--actor", "admin-bench"], env=env,
                              capture_output=True, text=True, check=True)
        env["CASELEDGER_TOKEN"] = done.stdout.split()[-1]
    done = subprocess.run([CASELEDGER, "tokens", "create", "--actor", actor, "--role", role, "--team", "hotline"],
                          env=env, capture_output=True, text=True, check=True)
    return done.stdout.split()[-1]


def _create_tickets(port: int, agent: str, lead: str, count: int) -> list[str]:
    """A customer (an agent registers it) and ``count`` tickets (a team lead, who may also classify)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(path: str, body: dict[str, Any], token: str = lead) -> dict[str, Any]:
        conn.request("POST", path, body=json.dumps(body).encode(),
                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        response = conn.getresponse()
        data = json.loads(response.read() or b"{}")
        if response.status not in (200, 201):
            raise RuntimeError(f"POST {path}: {response.status} {data}")
        return data

    customer = post("/customers", {"kind": "individual", "tier": "general", "contact": {"name": "张三"}}, agent)["id"]
    tickets = [post("/tickets", {"customer_id": customer, "channel": "phone"})["id"] for _ in range(count)]
    conn.close()
    return tickets


def _percentiles(latencies: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[94] * 1000, cuts[98] * 1000


def run(dsn: str, *, clients: int, workers: int, threads: int, requests: int, seconds: float) -> list[list[object]]:
    home = tempfile.mkdtemp(prefix="caseledger-bench-api-")
    env = Settings.from_environ().child_environ(CASELEDGER_DATABASE_URL=fresh_database_url("postgres", dsn),
                                                CASELEDGER_HOME=home)
    # Commands other than db init, serve and demo never create a ledger: make it before the tokens.
    subprocess.run([CASELEDGER, "db", "init"], env=env, capture_output=True, text=True, check=True)
    agent, lead = (_token(env, actor, role) for actor, role in (("agent-bench", "agent"), ("lead-bench", "team_lead")))
    port = free_port()
    log = open(Path(home) / "server.log", "w")
    server = subprocess.Popen([CASELEDGER, "serve", "--prod", "--workers", str(workers), "--threads", str(threads),
                               "--bind", f"127.0.0.1:{port}"], env=env, stdout=log, stderr=log)
    try:
        _wait_ready(port, server)
        # Enough tickets that each is classified about 8 times: histories of a realistic length.
        tickets = _create_tickets(port, agent, lead, max(clients * 8, requests // 8))
        receiver, sender = multiprocessing.get_context("spawn").Pipe(duplex=False)
        generator = multiprocessing.get_context("spawn").Process(
            target=load_generator, args=(sender, port, lead, tickets, clients, requests, seconds, server.pid))
        generator.start()
        results = receiver.recv()
        generator.join()
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    return table_rows(results, clients, workers, threads), results


def table_rows(results: dict[str, Any], clients: int, workers: int, threads: int) -> list[list[object]]:
    rows = []
    base_p99 = _percentiles(results["baseline"][0])[2]
    for phase, label in (("baseline", "GET /healthz (baseline)"), ("read", "GET /tickets/{id}"),
                         ("command", "POST /tickets/{id}/classify")):
        latencies, statuses, elapsed = results[phase][:3]
        errors = sum(1 for s in statuses if not 200 <= s < 300)
        p50, p95, p99 = _percentiles(latencies)
        target = TARGETS_MS.get(phase)
        verdict = f"p99 < {target:g} ms: {'met' if p99 < target and not errors else 'missed'}" if target else "—"
        rows.append([label, f"{len(latencies):,}", errors, f"{len(latencies) / elapsed:,.0f}", f"{p50:.1f}",
                     f"{p95:.1f}", f"{p99:.1f}", f"{p99 / base_p99:.1f}×", verdict])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized run: fewer requests, shorter limit")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    requests, seconds = (1_600, 20.0) if args.quick else (8_000, 60.0)
    print(f"Machine: {machine()}\n")
    with postgres_dsn() as dsn:
        rows, results = run(dsn, clients=args.clients, workers=args.workers, threads=args.threads,
                            requests=requests, seconds=seconds)
        raw = raw_command_rate(dsn, clients=args.clients, requests=requests, seconds=seconds,
                               tickets=max(args.clients * 8, requests // 8))
    print_table(f"API latency, {args.clients} concurrent clients, gunicorn {args.workers} workers × {args.threads} "
                "threads, PostgreSQL (ms)",
                ["request", "requests", "errors", "req/s", "p50", "p95", "p99", "p99 vs baseline", "target"], rows)
    latencies, statuses, elapsed = results["command"][:3]
    errors = sum(1 for s in statuses if not 200 <= s < 300)
    api_rate = len(latencies) / elapsed
    ratio = api_rate / raw["rate"]
    verdict = "met" if ratio >= 0.5 and errors == 0 else "missed"
    print_table(f"Command throughput, {args.clients} concurrent clients: the API vs a raw eventsourcing Application "
                f"driven by {args.clients} threads (same PostgreSQL server, commands/s)",
                ["API commands/s", "API errors", "raw commands/s", "raw errors", "API / raw", "target ≥ 0.5×, 0 errors"],
                [[f"{api_rate:,.0f}", errors, f"{raw['rate']:,.0f}", raw["errors"], f"{ratio:.2f}×", verdict]])
    rows = [[label, *per_request_ms(results[phase][3], len(results[phase][0]))]
            for phase, label in (("baseline", "API: GET /healthz"), ("read", "API: GET /tickets/{id}"),
                                 ("command", "API: POST /tickets/{id}/classify"))]
    rows.append(["raw eventsourcing, 16 threads: one command", "-", *per_request_ms(raw["cpu"], raw["commands"])[1:]])
    print_table("Where the CPU went, per request (ms of CPU time; bench.cpu_split): the server's processes "
                "(gunicorn master + workers), the load generator (for the raw baseline: its own process, "
                "threads and all), the rest of the machine (PostgreSQL, and any other work), the machine in all",
                ["phase", "server", "load generator / raw process", "rest of the machine", "machine"], rows)


if __name__ == "__main__":
    main()
