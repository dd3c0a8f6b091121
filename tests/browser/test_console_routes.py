"""Every console page is mapped to an action of the permission matrix, or is one of the few public
ones (fail closed, like api.permissions); and a page a role may not see is refused (403)."""

from __future__ import annotations

import re

from console import guard


def test_every_console_endpoint_names_its_action(app):
    console = app.extensions["caseledger.console"]
    known = app.extensions["caseledger.access"].actions() | {guard.PER_RECORD, guard.SIGNED_IN}
    unmapped = []
    for rule in console.url_map.iter_rules():
        action = getattr(console.view_functions[rule.endpoint], "console_action", None)
        if rule.endpoint in guard.PUBLIC_ENDPOINTS:
            assert action is None, rule.endpoint
        elif action not in known:
            unmapped.append((rule.rule, action))
    assert unmapped == []


def test_a_role_without_the_action_is_refused(app, tokens):
    client = app.test_client()
    form = client.get("/console/sign-in").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
    assert client.post("/console/sign-in", data={"csrf_token": csrf, "token": tokens[1]["agent"]}).status_code == 302
    assert client.get("/console/cases").status_code == 200
    refused = client.get("/console/retention")  # agents hold no retention.read
    assert refused.status_code == 403 and "may not retention.read" in refused.get_data(as_text=True)
    assert client.get("/", headers={"Accept": "text/html"}).headers["Location"] == "/console/"
    assert client.get("/").status_code == 401  # an API client still gets the API's answer
