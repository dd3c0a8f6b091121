"""The HTTP API: thin Flask handlers over the ledger. Marshmallow schemas are the contract.

No business rule lives here: handlers parse, build a command context from the caller's token,
call the ledger, and map errors to RFC 9457 problem responses.
"""

from api.app import create_app

__all__ = ["create_app"]
