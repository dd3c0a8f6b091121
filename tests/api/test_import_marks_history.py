"""An interaction imported over HTTP with its own past business time says so on its event: the
only way a past business time enters the ledger is as a historical record, with its source."""

from __future__ import annotations

import hashlib

NDJSON = "application/x-ndjson"


def test_imported_past_times_are_marked_with_their_source(api):
    body = ('{"channel": "email", "external_ref": "hist-1", "occurred_at": "2025-05-01T09:00:00+08:00"}\n'
            '{"channel": "sms", "external_ref": "live-1"}\n')
    done = api.post("/interactions/import", as_="service", data=body, content_type=NDJSON)
    assert done.status_code == 200, done.get_data(as_text=True)
    events = api.get("/events?limit=500", as_="auditor").json["items"]
    received = {e["data"].get("external_ref"): e["meta"] for e in events if e["type"] == "Received"}
    digest = hashlib.sha256(body.encode()).hexdigest()
    assert received["hist-1"]["imported"] == f"POST /interactions/import sha256:{digest}"
    assert received["hist-1"]["occurred_at"].startswith("2025-05-01T09:00:00")
    assert "imported" not in received["live-1"]
