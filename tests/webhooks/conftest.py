"""A webhook receiver on 127.0.0.1 that answers as scripted (fail, time out, succeed), and helpers."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from domain.context import Context
from domain.permissions import AccessPolicy
from services.webhook_delivery import RetryPolicy, WebhookDelivery
from services.webhooks import WebhookSubscriptions

#: How long a receiver told to be slow waits before answering (longer than the worker's timeout).
SLOW_SECONDS = 1.5
TIMEOUT_SECONDS = 0.4


class Receiver:
    """``script``: what to answer next, one entry per request: an HTTP status, or "slow" (answers
    200 only after the worker gave up); when it runs out, 200."""

    def __init__(self) -> None:
        self.script: list[int | str] = []
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(({k: v for k, v in self.headers.items()}, body))
                answer = receiver.script.pop(0) if receiver.script else 200
                if answer == "slow":
                    time.sleep(SLOW_SECONDS)
                    answer = 200
                self.send_response(int(answer))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


class FakeTime:
    """The delivery worker's clock (epoch seconds), moved by the test: backoff without sleeping."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def access() -> AccessPolicy:
    return AccessPolicy.load()


@pytest.fixture
def admin():
    def make(actor: str = "admin-ma", role: str = "administrator") -> Context:
        return Context(actor_id=actor, actor_role=role, occurred_at=datetime.now(UTC),
                       request_id=uuid.uuid4().hex)

    return make


@pytest.fixture
def subscriptions(ledger, access) -> WebhookSubscriptions:
    return WebhookSubscriptions(ledger, access)


@pytest.fixture
def worker(ledger, access, fake_time):
    """A worker retrying after 1 s, 2 s, 4 s… (on the fake clock), 3 attempts, a short timeout."""
    made = WebhookDelivery(ledger, access, clock=fake_time,
                           retry=RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=60.0, timeout=TIMEOUT_SECONDS))
    yield made
    made.close()
