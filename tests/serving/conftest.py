"""Fixtures for the serving and observability tests: the API fixtures of tests/api (loaded by
path: the test folders are not packages), a Prometheus text parser, and a TCP relay that lets a
test cut the line to a real PostgreSQL server."""

from __future__ import annotations

import importlib.util
import socket
import threading
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

_spec = importlib.util.spec_from_file_location("api_test_fixtures", Path(__file__).parents[1] / "api" / "conftest.py")
_api_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_api_fixtures)
tokens, app, api = _api_fixtures.tokens, _api_fixtures.app, _api_fixtures.api


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a /metrics answer, keyed by (name, labels)."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


class TcpRelay:
    """Forwards 127.0.0.1:<port> to a target; ``cut()`` closes the listener and every open line,
    so the database behind it becomes unreachable exactly as if its host went away."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        try:  # wakes the thread blocked in accept() and stops listening (close alone does neither)
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


@pytest.fixture
def parse_metrics():
    return samples


@pytest.fixture
def relay_to():
    """``relay_to(host, port)``: a :class:`TcpRelay`, cut at the end of the test at the latest."""
    relays: list[TcpRelay] = []

    def make(host: str, port: int) -> TcpRelay:
        relays.append(TcpRelay(host, port))
        return relays[-1]

    yield make
    for relay in relays:
        relay.cut()
