"""The web console in a real headless Chromium: sign-in/out and expiry, masking and recorded
disclosure, the as-of slider, in-browser proof verification, CSRF refusal, a four-eyes disposition
by two sessions, the API docs; every request stays on 127.0.0.1 and no page logs an error."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import datetime, timedelta, timezone

from playwright.sync_api import expect

from domain.context import Context
from ledger.keys import LogKeys
from ledger.settings import Settings

CONTACT = {"name": "赵六", "phone": "13811112222"}


def _post(app, tokens, who, path, body, expect_status=201):
    response = app.test_client().post(path, json=body, headers={"Authorization": f"Bearer {tokens[1][who]}"})
    assert response.status_code == expect_status, (path, response.json)
    return response.json


def _ticket(app, tokens) -> tuple[str, str]:
    """A customer and a ticket that went received → classified → first response → assigned."""
    customer = _post(app, tokens, "agent", "/customers", {"kind": "individual", "tier": "vip", "contact": CONTACT})["id"]
    ticket = _post(app, tokens, "agent", "/tickets", {"customer_id": customer, "channel": "phone",
                                                      "summary": "宽带断了"})["id"]
    t = f"/tickets/{ticket}"
    _post(app, tokens, "lead", f"{t}/classify", {"priority": "urgent", "complexity": "complex", "high_risk": False}, 200)
    _post(app, tokens, "agent", f"{t}/respond-first", {"message": "已收到"}, 200)
    _post(app, tokens, "lead", f"{t}/assign", {"handler": "agent-li", "team": "hotline"}, 200)
    return customer, ticket


def test_sign_in_sign_out_and_session_expiry(app, session, tokens, watched):
    page = session()
    page.goto("/console/cases")
    expect(page).to_have_url(re.compile(r"/console/sign-in"))  # no session: sent to sign in
    page.get_by_label("API token").fill("cl_not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#why")).to_contain_text("not known")
    page.get_by_label("API token").fill(tokens[1]["auditor"])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/console/cases$"))  # back where the browser wanted to go
    expect(page.locator("#who")).to_have_text("auditor-he (auditor)")
    cookie = next(c for c in page.context.cookies() if c["name"] == "caseledger_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    csp = page.request.get("/console/").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp

    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#why")).to_have_text("signed out")
    page.goto("/console/")
    expect(page).to_have_url(re.compile(r"/console/sign-in"))  # the old cookie no longer works

    # Expiry is judged on the server: an idle session is over, whatever the cookie says.
    second = session("lead")
    store = app.extensions["caseledger.console"].extensions["console.sessions"]
    real_now = store.now
    store.now = lambda: real_now() + store.idle + timedelta(minutes=1)
    second.goto("/console/cases")
    expect(second.locator("#why")).to_contain_text("expired")
    # The one error the browser logs is the refused sign-in's document load (401); nothing else.
    assert watched.errors == ["Failed to load resource: the server responded with a status of 401 (UNAUTHORIZED)"]


def test_agent_sees_masked_contact_and_a_disclosure_is_recorded(shoot, app, session, tokens, watched):
    customer, _ = _ticket(app, tokens)
    agent = session("agent")
    agent.goto(f"/console/cases/customer/{customer}")
    expect(agent.locator('#contact [data-field="phone"]')).to_have_text("138****2222")
    expect(agent.locator('#contact [data-field="name"]')).to_have_text("赵*")

    auditor = session("auditor")  # auditors see no personal data: the matrix grants them no unmask
    auditor.goto(f"/console/cases/customer/{customer}")
    expect(auditor.locator('#contact [data-field="phone"]')).to_have_text("138****2222")
    expect(auditor.locator("#unmask")).to_have_count(0)

    officer = session("compliance")
    officer.goto(f"/console/cases/customer/{customer}")
    officer.get_by_label(re.compile("Reason for reading personal data")).fill("data-subject access request 2025-17")
    officer.get_by_role("button", name="Show unmasked").click()
    expect(officer.locator('#contact [data-field="phone"]')).to_have_text(CONTACT["phone"])
    shoot(officer, "case-customer")
    recorded = [e for e in app.extensions["caseledger.access_log"].entries(subject=customer)[0]]
    assert [(e["actor_id"], e["reason"], sorted(e["fields"])) for e in recorded] == [
        ("compliance-xu", "data-subject access request 2025-17", ["name", "phone"])]
    assert watched.errors == []


def test_as_of_slider_changes_the_state_and_diff_lists_changes(shoot, app, session, tokens, watched):
    _, ticket = _ticket(app, tokens)
    page = session("auditor")
    page.goto(f"/console/cases/ticket/{ticket}")
    expect(page.locator('#state [data-key="version"]')).to_have_text("4")  # 4 events: the latest state
    expect(page.locator('#state [data-key="handler"]')).to_have_text("agent-li")
    slider = page.get_by_label(re.compile(r"Event 4 of 4"))
    slider.focus()
    page.keyboard.press("Home")  # keyboard: to the first event; letting go submits (enhance.js)
    expect(page).to_have_url(re.compile(r"at=1"))
    expect(page.locator('#state [data-key="version"]')).to_have_text("1")
    expect(page.locator('#state [data-key="handler"]')).to_have_text("None")
    expect(page.locator("#timeline tbody tr")).to_have_count(4)
    expect(page.locator("#timeline tbody tr").nth(1)).to_contain_text("lead-wang")
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("#diff")).to_contain_text("priority")
    expect(page.locator("#diff caption")).to_have_text("Version 1 → 4")
    shoot(page, "case-timeline")
    assert watched.errors == []


def test_proof_verifies_in_the_browser_and_fails_when_tampered_or_wrong_key(shoot, app, env, session, tokens, watched):
    keys = LogKeys.from_settings(Settings.from_environ(env))
    keys.init()
    _, ticket = _ticket(app, tokens)
    app.extensions["caseledger.log"].publish_checkpoint(app.extensions["caseledger.clock"]())
    page = session("auditor")
    page.goto(f"/console/cases/ticket/{ticket}")
    page.locator("#timeline tbody tr").nth(1).get_by_role("link", name="proof").click()
    expect(page.locator("#proof-result")).to_have_attribute("data-status", "unpinned")
    page.get_by_label(re.compile("Pinned verifier key")).fill(keys.verifier_text().strip())
    page.get_by_role("button", name="Pin key and verify").click()
    expect(page.locator("#proof-result")).to_have_attribute("data-status", "verified")
    shoot(page, "proof-verified")
    proof_url = page.url

    # A server that hands the page a tampered leaf: one byte of the leaf changed.
    def tamper(route):
        body = route.fetch().json()
        leaf = bytearray(base64.b64decode(body["leaf"]))
        leaf[-1] ^= 1
        body["leaf"] = base64.b64encode(bytes(leaf)).decode()
        route.fulfill(json=body)
    page.route("**/*.json", tamper)
    page.reload()  # the key stays pinned in this browser
    expect(page.locator("#proof-result")).to_have_attribute("data-status", "failed")
    expect(page.locator("#proof-result")).to_contain_text("another root")
    page.unroute("**/*.json")

    # A key the log never signed with, under the log's own name: the signature check fails.
    other = LogKeys.from_settings(Settings.from_environ({**env, "CASELEDGER_HOME": env["CASELEDGER_HOME"] + "-other"}))
    name = keys.verifier_text().split("+")[0]
    other.init(origin=name)
    page.goto(proof_url)
    page.get_by_label(re.compile("Pinned verifier key")).fill(other.verifier_text().strip())
    page.get_by_role("button", name="Pin key and verify").click()
    expect(page.locator("#proof-result")).to_have_attribute("data-status", "failed")
    expect(page.locator("#proof-result")).to_contain_text("no signature by the pinned key")
    assert watched.errors == []


def test_a_form_without_the_session_csrf_token_is_refused(app, session, tokens, watched):
    page = session("compliance")
    customer, _ = _ticket(app, tokens)
    page.goto(f"/console/cases/customer/{customer}")
    page.locator('#unmask input[name="csrf_token"]').evaluate("input => input.value = 'forged'")
    page.get_by_label(re.compile("Reason for reading personal data")).fill("curious")
    page.get_by_role("button", name="Show unmasked").click()
    expect(page.locator("h1")).to_have_text("403 Forbidden")
    expect(page.locator("#problem")).to_contain_text("CSRF")
    assert app.extensions["caseledger.access_log"].entries(subject=customer)[0] == []  # nothing disclosed
    # The browser logs the refused document load (403); nothing else went wrong.
    assert [e for e in watched.errors if "403" not in e] == []


def test_dashboard_docs_and_a_narrow_screen(shoot, app, session, tokens, watched):
    _ticket(app, tokens)
    page = session("lead", width=360)
    page.goto("/console/dashboard")
    expect(page.locator("#kpis")).to_be_visible()
    expect(page.locator("svg.chart").first).to_be_visible()
    expect(page.locator("#sla")).to_contain_text("first_response")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    wide = page.evaluate("""[...document.querySelectorAll('body *')].filter(e => !(e.parentElement && e.parentElement.closest('.scroll')) && e.getBoundingClientRect().right > document.documentElement.clientWidth)
        .slice(0, 5).map(e => e.tagName + '#' + e.id + ' ' + e.getBoundingClientRect().right)
        .concat([...document.querySelectorAll('main > *, section > *')].filter(e => e.scrollWidth > 330).map(e => e.tagName + e.className + e.scrollWidth + '/' + e.clientWidth)).concat([document.documentElement.clientWidth, document.body.scrollWidth, document.querySelector('main').scrollWidth, document.querySelector('header').scrollWidth])""")
    assert overflow <= 0, wide  # readable at 360 px: tables scroll inside their own box, the page does not
    shoot(page, "dashboard-360")
    page.goto("/docs")
    expect(page.locator(".information-container .title")).to_contain_text("caseledger")
    assert watched.errors == []


def test_four_eyes_disposition_by_two_sessions(shoot, app, ledger, clock, session, wall_clock, watched):
    """Records manager proposes in one session; the compliance officer approves in another."""
    cst = timezone(timedelta(hours=8))
    opened, closed = datetime(2025, 9, 1, 9, 0, tzinfo=cst), datetime(2025, 9, 30, 15, 0, tzinfo=cst)
    wall_clock.now = datetime(2028, 12, 31, 10, 0, tzinfo=cst)  # long after the 3-year retention of the contact
    clock.now = wall_clock.now - timedelta(days=1)  # the business time of the steps taken in the pages

    def at(moment, actor="agent-li", role="agent"):
        return Context(actor, role, moment, uuid.uuid4().hex)
    customer = ledger.register_customer(at(opened), kind="individual", tier="general", contact=CONTACT)
    contact = ledger.receive_interaction(at(opened + timedelta(minutes=1)), channel="phone", direction="inbound",
                                         customer_id=str(customer.id), content="bill question", agent_id="agent-li",
                                         queue="billing")
    ledger.act("interaction", contact.id, "close", at(closed), {"resolved_on_first_contact": True})

    records = session("records")
    records.goto("/console/retention")
    records.get_by_role("button", name=f"Propose disposition of {customer.id}").click()
    expect(records.locator("#d-status")).to_have_text("proposed")
    expect(records.get_by_role("button", name="Approve")).to_have_count(0)  # the proposer cannot approve
    shoot(records, "disposition-proposed")

    officer = session("compliance")  # the second pair of eyes signs in separately
    officer.goto(records.url)
    officer.get_by_role("button", name="Approve").click()
    expect(officer.locator("#d-status")).to_have_text("approved")
    disposition = ledger.get("disposition", records.url.rsplit("/", 1)[1])
    assert disposition.status == "approved" and disposition.proposer == "records-chen"
    assert watched.errors == []
