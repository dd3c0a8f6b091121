"""Browser tests: the console served by a real HTTP server thread on 127.0.0.1, driven by headless
Debian Chromium through Playwright (``executable_path``: no browser build is ever downloaded).

One browser per module; each test gets fresh contexts (so sessions, cookies and localStorage start
empty), a request log that must only ever name 127.0.0.1, and a console-error log that must stay
empty. Screenshots of the main pages go to var/screenshots/, so a test run leaves the checkout
clean; `make screenshots` writes them to docs/screenshots/ instead, the copies the README shows
(``CASELEDGER_SCREENSHOT_DIR``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from http_server import serving
from playwright.sync_api import Browser, Page, sync_playwright

from api import create_app
from services.tokens import TokenService, system_context

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = _ROOT / os.environ.get("CASELEDGER_SCREENSHOT_DIR", "var/screenshots")
ROLES = {"agent": ("agent-li", "agent"), "lead": ("lead-wang", "team_lead"), "auditor": ("auditor-he", "auditor"),
         "compliance": ("compliance-xu", "compliance_officer"), "records": ("records-chen", "records_manager"),
         "admin": ("admin-ma", "administrator"),
         "compliance2": ("compliance-qian", "compliance_officer")}  # a second pair of eyes (four-eyes steps)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


class RoleTokens(Mapping[str, str]):
    """``tokens["agent"]``: a token of that caller, issued on first use (each issue is a ledger write,
    and a test signs in as two or three of the callers, not all of them)."""

    def __init__(self, service: TokenService):
        self.service, self.issued = service, {}

    def __getitem__(self, name: str) -> str:
        if name not in self.issued:
            actor, role = ROLES[name]
            self.issued[name] = self.service.issue(actor, role, "hotline", ctx=system_context("test-setup"))[0]
        return self.issued[name]

    def __iter__(self) -> Iterator[str]:
        return iter(ROLES)

    def __len__(self) -> int:
        return len(ROLES)


@pytest.fixture
def tokens(ledger) -> tuple[TokenService, RoleTokens]:
    service = TokenService(ledger)
    return service, RoleTokens(service)


@pytest.fixture
def app(ledger, tokens, clock, env):
    return create_app(env, ledger, tokens=tokens[0], clock=clock)


@pytest.fixture
def server(app) -> Iterator[str]:
    """The app on a real server thread; its base URL."""
    with serving(app, join_timeout=5) as url:
        yield url


class Watched:
    """Every page opened in the test: the URLs it requested and the errors it logged."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.errors: list[str] = []

    def watch(self, page: Page) -> Page:
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        return page


@pytest.fixture
def watched() -> Iterator[Watched]:
    log = Watched()
    yield log
    # No request left this host (the data: favicon never reaches the network).
    hosts = {urlsplit(url).hostname for url in log.requests if not url.startswith("data:")}
    assert log.requests and hosts == {"127.0.0.1"}, hosts


@pytest.fixture
def session(browser, server, tokens, watched):
    """``session("auditor")``: a page in a browser context of its own, signed in as that caller."""
    contexts: list[Any] = []

    def open_as(who: str | None = None, *, width: int = 1200) -> Page:
        context = browser.new_context(viewport={"width": width, "height": 900}, base_url=server)
        contexts.append(context)
        page = watched.watch(context.new_page())
        if who is not None:
            sign_in(page, tokens[1][who])
        return page

    yield open_as
    for context in contexts:
        context.close()


def sign_in(page: Page, token: str) -> None:
    page.goto("/console/")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/console/$"))


@pytest.fixture
def shoot():
    """``shoot(page, "name")``: a full-page screenshot to ``SCREENSHOTS/name.png``."""
    def take(page: Page, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    return take
