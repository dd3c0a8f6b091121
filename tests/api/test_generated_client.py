"""A client generated from the served OpenAPI document drives a whole ticket lifecycle.

``openapi-python-client`` (a test-only dependency) generates a Python package from
``/openapi.json`` into a temporary folder, once per test session; the test imports it and, as a
real integrator would, talks HTTP to the app served by werkzeug on 127.0.0.1 — once on SQLite and
once on PostgreSQL. It uses only what the document declares: operationIds as function names, the
models and their enums, the If-Match and Idempotency-Key header parameters, the problem schema of
the errors, and next_cursor paging.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
from werkzeug.serving import make_server

from api import create_app

PACKAGE = "caseledger_client"


@pytest.fixture(scope="module")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The generated client package (from the document of an app on a scratch SQLite ledger)."""
    root = tmp_path_factory.mktemp("generated")
    scratch = create_app({"CASELEDGER_DATABASE_URL": f"sqlite:///{root / 'scratch.db'}",
                          "CASELEDGER_HOME": str(root / "home")})
    (root / "openapi.json").write_bytes(scratch.test_client().get("/openapi.json").data)
    scratch.extensions["caseledger"].close()
    generator = Path(sys.executable).with_name("openapi-python-client")
    done = subprocess.run([str(generator), "generate", "--path", str(root / "openapi.json"), "--output-path",
                           str(root / PACKAGE), "--meta", "none"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


@pytest.fixture
def base_url(app) -> Iterator[str]:
    """The app served over real HTTP on 127.0.0.1 (a free port), in a thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_a_generated_client_drives_a_ticket_from_creation_to_archive(client_package, base_url, tokens):
    pkg = client_package
    op = lambda tag, name: importlib.import_module(f"{PACKAGE}.api.{tag}.{name}")  # noqa: E731
    model = lambda name: getattr(importlib.import_module(f"{PACKAGE}.models"), name)  # noqa: E731
    Problem = model("Problem")
    as_ = {name: pkg.AuthenticatedClient(base_url=base_url, token=secret, raise_on_unexpected_status=True)
           for name, secret in tokens[1].items()}

    created = op("customers", "customers_create").sync_detailed(
        client=as_["agent"], body=model("CustomerCreate").from_dict({"kind": "individual", "tier": "vip"}),
        idempotency_key="gen-client-customer-1")
    assert created.status_code == 201 and created.parsed.tier == "vip"
    retried = op("customers", "customers_create").sync_detailed(
        client=as_["agent"], body=model("CustomerCreate").from_dict({"kind": "individual", "tier": "vip"}),
        idempotency_key="gen-client-customer-1")
    assert retried.parsed.id == created.parsed.id  # the declared Idempotency-Key: one customer, not two

    ticket = op("tickets", "tickets_create").sync(client=as_["agent"], body=model("TicketCreate").from_dict(
        {"customer_id": str(created.parsed.id), "channel": "phone", "summary": "宽带断了"}))
    assert ticket.status == "received" and ticket.first_contact_owner == "agent-li"
    t = ticket.id

    def act(action: str, who: str, body: dict[str, Any] | None = None, **headers: str) -> Any:
        schema = "Ticket" + "".join(part.capitalize() for part in action.split("_"))
        response = op("tickets", f"tickets_{action}").sync_detailed(
            t, client=as_[who], body=model(schema).from_dict(body or {}), **headers)
        assert response.status_code == 200, (action, response.parsed)
        return response

    classified = act("classify", "lead", {"priority": "urgent", "complexity": "general", "high_risk": False})
    assert classified.parsed.priority == "urgent" and classified.headers["ETag"] == '"2"'
    act("respond_first", "agent", {"message": "已收到"})
    stale = op("tickets", "tickets_assign").sync_detailed(  # If-Match naming the version read before respond_first
        t, client=as_["lead"], body=model("TicketAssign").from_dict({"handler": "agent-zhao"}), if_match='"2"')
    assert stale.status_code == 412 and isinstance(stale.parsed, Problem) and stale.parsed.current_version == 3
    act("assign", "lead", {"handler": "agent-zhao", "team": "hotline"}, if_match='"3"')
    act("start_work", "agent2")
    assert act("resolve", "agent2", {"resolution": "更换光猫"}).parsed.status == "resolved"
    act("feed_back_result", "agent2", {"channel": "sms"})
    act("record_acceptance", "agent2", {"accepted": True})
    act("close", "agent2")
    archived = act("archive", "records")
    assert archived.parsed.status == "archived"
    refused = op("tickets", "tickets_reopen").sync_detailed(t, client=as_["lead"], body=model("TicketReopen")())
    assert refused.status_code == 409 and refused.parsed.rule  # a forbidden transition names its rule

    views = op("views", "views_tickets")
    archived_only = {"owner": ["agent-li"], "status": [model("ViewsTicketsStatusType0Item")("archived")]}
    listed = views.sync_detailed(client=as_["agent"], **archived_only)
    assert listed.status_code == 200 and [row.ticket_id for row in listed.parsed.items] == [str(t)]
    unchanged = views.sync_detailed(client=as_["agent"], if_none_match=listed.headers["ETag"], **archived_only)
    assert unchanged.status_code == 304  # the declared If-None-Match: nothing moved since

    types, cursor, pages = [], None, 0
    while True:
        page = op("tickets", "tickets_events").sync(t, client=as_["auditor"], limit=4,
                                                    **({"cursor": cursor} if cursor else {}))
        types += [e.type_ for e in page.items]
        pages += 1
        cursor = page.next_cursor
        if not cursor:
            break
    assert types == ["Received", "Classified", "FirstResponded", "Assigned", "WorkStarted", "Resolved",
                     "ResultFedBack", "AcceptanceRecorded", "Closed", "Archived"]
    assert pages == 3  # 10 events, 4 a page
