"""Mounting the console into the API's WSGI app: ``/console/…`` and ``/docs`` go to the console,
everything else to the API unchanged; a browser opening ``/`` is sent to the console."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from console.app import PREFIX, create_console


class ConsoleMount:
    """WSGI middleware dispatching by path."""

    def __init__(self, api_wsgi: Callable, console: Flask):
        self.api_wsgi, self.console = api_wsgi, console

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == PREFIX or path.startswith(PREFIX + "/") or path == "/docs" or path.startswith("/docs/"):
            return self.console.wsgi_app(environ, start_response)
        if path == "/" and environ.get("REQUEST_METHOD") == "GET" and "text/html" in environ.get("HTTP_ACCEPT", ""):
            start_response("303 See Other", [("Location", PREFIX + "/"), ("Content-Length", "0")])
            return [b""]
        return self.api_wsgi(environ, start_response)


def mount_console(api_app: Flask, **options: Any) -> Flask:
    """Mount a console sharing ``api_app``'s ledger and services; returns the console app."""
    console = create_console(api_app, **options)
    api_app.wsgi_app = ConsoleMount(api_app.wsgi_app, console)  # type: ignore[method-assign]
    api_app.extensions["caseledger.console"] = console
    return console
