"""One pagination style for every list: an opaque ``cursor`` and ``Link: <…>; rel="next"``.

A list answers at most ``limit`` items and, while there are more, ``next_cursor`` in the body and
the same URL with ``cursor=<next_cursor>`` as an RFC 8288 ``Link`` header (:func:`link_next`, for
every JSON response that has a ``next_cursor``, whichever module answered it). The last page has
``next_cursor: null`` and no ``Link``. Nothing is cut off silently: a list without a cursor
answers everything.

Cursors are base64url JSON ``{"k": <list>, "after": <position>}`` (``projections.queries`` makes
the read models' ones the same way; ``api.boundary`` refuses a forged one with 400 before any
handler runs). Lists that used to page with ``?after=`` / ``next_after`` still accept and return
them (deprecated), so existing clients keep working.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from flask import Response, request
from werkzeug.exceptions import BadRequest

from projections.queries import BadCursor, decode_cursor, encode_cursor


def after(query: dict[str, Any], list_name: str) -> int:
    """The position to continue after: the ``cursor``'s, else the deprecated ``after`` (else 0)."""
    cursor = query.get("cursor")
    if cursor:
        try:
            return decode_cursor(list_name, cursor)
        except BadCursor as e:
            raise BadRequest(str(e)) from None
    return query.get("after") or 0


def next_page(list_name: str, last: int | None) -> dict[str, Any]:
    """The body fields of a page whose last item is at ``last`` (None: this is the last page)."""
    return {"next_cursor": None if last is None else encode_cursor(list_name, last), "next_after": last}


def link_next(response: Response) -> Response:
    """after_request: ``Link: <this URL with cursor=…>; rel="next"`` on a page that has a next one."""
    if (request.method != "GET" or response.status_code != 200 or response.mimetype != "application/json"
            or response.direct_passthrough or b'"next_cursor"' not in (data := response.get_data())):
        return response
    try:
        cursor = json.loads(data).get("next_cursor")
    except (ValueError, AttributeError):
        return response
    if isinstance(cursor, str) and cursor:
        args = [(k, v) for k, v in request.args.items(multi=True) if k not in ("cursor", "after")]
        url = f"{quote(request.path)}?{urlencode([*args, ('cursor', cursor)])}"
        response.headers.add("Link", f'<{url}>; rel="next"')
    return response
