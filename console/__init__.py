"""The web console: server-rendered pages for auditors, compliance officers and team leads.

An entry point beside the API (layer 5, like ``api``): its own Flask app, mounted into the API's
WSGI app by :func:`console.mount.mount_console` under ``/console`` (and ``/docs``), so the API's
bearer-token and problem+json machinery stays untouched while the console signs people in with a
session cookie. It shares the API app's ledger, token service, access policy and access log, so
pages obey the same permission matrix (``domain/permissions.toml``) and the same masking
(``services.disclosure``), and every unmasked view is recorded in the security audit log.
"""
