"""API docs at ``/docs``: Swagger UI from the installed ``swagger-ui-bundle-v2`` package, served by
the application itself (no CDN), reading the API's own ``/openapi.json``. The page's start-up
script is a file of ours (``static/docs-init.js``), so the strict CSP needs no inline script."""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, render_template, send_from_directory
from swagger_ui_bundle import swagger_ui_path

#: The files of the bundle the page uses (nothing else of the package is served).
ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js",
                    "favicon-32x32.png", "favicon-16x16.png"})


def register(app: Flask) -> None:
    app.add_url_rule("/docs", "docs", docs)
    app.add_url_rule("/docs/assets/<name>", "docs_asset", asset)


def docs() -> Any:
    return render_template("docs.html")


def asset(name: str) -> Any:
    if name not in ASSETS:
        abort(404)
    return send_from_directory(swagger_ui_path, name, max_age=3600)
