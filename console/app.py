"""The console's Flask app: session sign-in, CSRF, a strict Content-Security-Policy, the pages.

Every request: the session cookie names a live server-side session (:mod:`console.sessions`) or
the browser is sent to sign in; a POST must carry the session's CSRF token; the page's action is
checked against the permission matrix (:mod:`console.guard`). Every response gets a CSP that
allows only the console's own scripts, styles and images (no inline script), and no caching.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from flask import Flask, Response, g, redirect, render_template, request, url_for
from werkzeug.exceptions import Forbidden, HTTPException, InternalServerError, ServiceUnavailable

from console import guard
from console.sessions import SessionStore
from ledger.unavailable import storage_unavailable
from projections.stalls import ProjectionStalled

log = logging.getLogger(__name__)

COOKIE = "caseledger_console"
#: Before sign-in there is no session: the sign-in form's CSRF token is a double-submit cookie.
PRE_SESSION_COOKIE = "caseledger_console_csrf"
PREFIX = "/console"
#: Same-origin only; no inline script or style; connect-src for the proof page's fetch.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SHARED = ("caseledger", "caseledger.access", "caseledger.tokens", "caseledger.access_log", "caseledger.clock",
          "caseledger.log", "caseledger.settings", "caseledger.logproofs")


def wall_clock() -> datetime:
    return datetime.now(timezone.utc)


def create_console(api_app: Flask, *, now: Callable[[], datetime] = wall_clock) -> Flask:
    """The console app, sharing ``api_app``'s ledger, tokens, access policy, access log and log."""
    app = Flask("console", static_folder="static", static_url_path=f"{PREFIX}/static")
    app.extensions.update({name: api_app.extensions[name] for name in SHARED if name in api_app.extensions})
    app.extensions["console.sessions"] = SessionStore(app.extensions["caseledger"], now)
    app.extensions["console.now"] = now
    app.config.update(MAX_CONTENT_LENGTH=64 * 1024)
    app.jinja_env.globals.update(may=guard.may, csrf_field=guard.CSRF_FIELD)

    @app.before_request
    def _session() -> Any:
        g.request_id = str(uuid.uuid4())
        if request.endpoint in guard.PUBLIC_ENDPOINTS or request.url_rule is None:
            return None
        session, why = app.extensions["console.sessions"].find(request.cookies.get(COOKIE))
        if session is None:
            target = url_for("sign_in_form", why=why, next=request.full_path.rstrip("?") if request.method == "GET" else None)
            return redirect(target)
        g.session, g.caller = session, session.caller
        if request.method == "POST":
            guard.check_csrf(session.csrf)
        guard.authorize()
        return None

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.update({"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                                 "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
                                 "X-Request-Id": g.get("request_id", "")})
        if request.endpoint != "static" and request.endpoint != "docs_asset":
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(HTTPException)
    def _error(error: HTTPException) -> Any:
        return render_template("error.html", error=error), error.code or 500

    @app.errorhandler(ProjectionStalled)
    def _stalled(error: ProjectionStalled) -> Any:
        # As the API's 503: a page that must not act on a stopped read model says which and why.
        return render_template("error.html", error=ServiceUnavailable(str(error))), 503

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Any:
        unavailable = storage_unavailable(error)
        if unavailable is not None:
            page = render_template("error.html", error=ServiceUnavailable(unavailable.detail))
            return page, 503, {"Retry-After": str(unavailable.retry_after)}
        log.exception("console request %s failed", g.get("request_id", ""))
        return render_template("error.html", error=InternalServerError("the page could not be made; the error "
                                                                     "is logged with this request's id")), 500

    _sign_in_routes(app)
    from console import (  # the pages, on this app
        docs,
        pages_cases,
        pages_findings,
        pages_queues,
        pages_work,
    )
    pages_cases.register(app)
    pages_work.register(app)
    pages_findings.register(app)
    pages_queues.register(app)
    docs.register(app)
    return app


def _sign_in_routes(app: Flask) -> None:
    @app.get(f"{PREFIX}/sign-in", endpoint="sign_in_form")
    def sign_in_form() -> Any:
        csrf = request.cookies.get(PRE_SESSION_COOKIE) or secrets.token_urlsafe(32)
        response = Response(render_template("sign_in.html", csrf=csrf, why=request.args.get("why"),
                                            next=_safe_next(request.args.get("next"))))
        _set_cookie(response, PRE_SESSION_COOKIE, csrf)
        return response

    @app.post(f"{PREFIX}/sign-in", endpoint="sign_in")
    def sign_in() -> Any:
        guard.check_csrf(request.cookies.get(PRE_SESSION_COOKIE, ""))
        caller = app.extensions["caseledger.tokens"].caller(request.form.get("token", "").strip())
        if caller is None:
            csrf = request.cookies.get(PRE_SESSION_COOKIE, "")
            return render_template("sign_in.html", csrf=csrf, why="that token is not known, has expired or was "
                                   "revoked", next=_safe_next(request.form.get("next"))), 401
        secret, _ = app.extensions["console.sessions"].start(caller)
        response = redirect(_safe_next(request.form.get("next")) or url_for("home"))
        _set_cookie(response, COOKIE, secret)
        response.delete_cookie(PRE_SESSION_COOKIE, path=PREFIX)
        return response

    @app.post(f"{PREFIX}/sign-out", endpoint="sign_out")
    @guard.needs(guard.SIGNED_IN)
    def sign_out() -> Any:
        app.extensions["console.sessions"].end(request.cookies.get(COOKIE, ""))
        response = redirect(url_for("sign_in_form", why="signed out"))
        response.delete_cookie(COOKIE, path=PREFIX)
        return response


def _set_cookie(response: Response, name: str, value: str) -> None:
    # HttpOnly: no script reads it; SameSite=Strict: no other site's page sends it; Secure behind TLS.
    response.set_cookie(name, value, httponly=True, samesite="Strict", secure=request.is_secure, path=PREFIX)


def _safe_next(target: str | None) -> str | None:
    """Only a path of the console itself (no open redirect to another site)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


__all__ = ["COOKIE", "CSP", "Forbidden", "create_console"]
