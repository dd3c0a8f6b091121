"""Over HTTP, business time later than the wall clock plus the skew is a 422 problem naming the rule
(``time.future``), and nothing of the request is written."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

PROBLEM = "application/problem+json"


def test_an_import_dated_ahead_of_the_wall_clock_is_refused_whole(api, ledger):
    now = datetime.now(timezone.utc)
    lines = [{"channel": "email", "external_ref": "t-1", "occurred_at": (now - timedelta(days=1)).isoformat()},
             {"channel": "email", "external_ref": "t-2", "occurred_at": (now + timedelta(days=1)).isoformat()}]
    before = ledger.recorder.max_notification_id()
    response = api.post("/interactions/import", data="\n".join(json.dumps(line) for line in lines),
                        content_type="application/x-ndjson")
    assert response.status_code == 422 and response.mimetype == PROBLEM, response.get_data(as_text=True)
    body = response.json
    assert body["rule"] == "time.future" and body["type"].endswith("/rule/time.future")
    assert lines[1]["occurred_at"] in body["detail"] and "wall clock" in body["detail"] and "120 s" in body["detail"]
    assert ledger.recorder.max_notification_id() == before  # not even the first line

    within_skew = {**lines[1], "occurred_at": (datetime.now(timezone.utc) + timedelta(seconds=60)).isoformat()}
    ok = api.post("/interactions/import", data=json.dumps(within_skew), content_type="application/x-ndjson")
    assert ok.status_code == 200 and ok.json["imported"] == 1
