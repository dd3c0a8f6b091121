"""Reading the case lists: filters and keyset pagination.

Pages are ordered by ``seq`` (the log position of the case's creation event: unique, stable,
never reused) and the cursor carries the last ``seq`` of the page, so a page is one index range
scan however deep the client pages, and rows added meanwhile never shift a page.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any, Mapping

from projections.cases import CLOSED_LOOP_RUNNING, COMPLAINT_TABLE, RESOLUTION_RUNNING, TICKET_TABLE
from projections.store import Table, ViewDatabase
from projections.timeutil import stamp


class BadCursor(ValueError):
    """The cursor was not issued by this list."""


def encode_cursor(kind: str, seq: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": kind, "after": seq}).encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if data["k"] != kind or not isinstance(data["after"], int):
            raise ValueError
        return data["after"]
    except (ValueError, KeyError, TypeError):
        raise BadCursor(f"cursor is not a {kind} list cursor from this API") from None


#: filter name -> column, per list (equality filters; lists of values mean "any of").
TICKET_FILTERS = {"status": "status", "priority": "priority", "complexity": "complexity", "channel": "channel",
                  "owner": "first_contact_owner", "handler": "handler", "team": "team", "customer_id": "customer_id",
                  "service_type": "service_type"}
COMPLAINT_FILTERS = {"status": "status", "channel": "channel", "level": "level", "complaint_type": "complaint_type",
                     "rung": "rung", "handler": "handler", "owner": "handler", "customer_id": "customer_id",
                     "service_type": "service_type"}


def _page(db: ViewDatabase, kind: str, table: Table, filters: Mapping[str, str], criteria: Mapping[str, Any],
          overdue: tuple[bool | None, str, frozenset[str], datetime | None], cursor: str | None,
          limit: int) -> dict[str, Any]:
    where, params = [], []
    for name, column in filters.items():
        value = criteria.get(name)
        if value is None or value == []:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        where.append(f"{column} IN ({', '.join('?' for _ in values)})")
        params.extend(values)
    wanted, deadline_column, running, as_of = overdue
    if wanted is not None:
        statuses = sorted(running)
        late = (f"({deadline_column} IS NOT NULL AND {deadline_column} < ? "
                f"AND status IN ({', '.join('?' for _ in statuses)}))")
        where.append(late if wanted else f"NOT {late}")
        params.extend([stamp(as_of), *statuses])
    page = keyset_page(db, table, kind, where, params, cursor, limit)
    for row in page["items"]:
        deadline = row.get(deadline_column)
        row["overdue"] = bool(as_of and deadline and row["status"] in running and deadline < stamp(as_of))
    return page


def keyset_page(db: ViewDatabase, table: Table, kind: str, where: list[str], params: list[Any], cursor: str | None,
                limit: int) -> dict[str, Any]:
    """One page of ``table``'s rows matching every ``where`` condition (``?`` bound to ``params``), in
    ``seq`` order after the ``kind`` list's ``cursor``; ``next_cursor`` is None on the last page."""
    if cursor:
        where.append("seq > ?")
        params.append(decode_cursor(kind, cursor))
    sql = f"SELECT {', '.join(table.column_names)} FROM {table.name}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    with db.reading() as cur:
        # one more than asked tells whether there is a next page
        rows = [dict(zip(table.column_names, r))
                for r in cur.execute(sql + " ORDER BY seq LIMIT ?", [*params, limit + 1]).fetchall()]
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": encode_cursor(kind, rows[-1]["seq"]) if more else None}


def list_tickets(db: ViewDatabase, criteria: Mapping[str, Any], *, as_of: datetime, overdue: bool | None = None,
                 cursor: str | None = None, limit: int = 50) -> dict[str, Any]:
    """Tickets matching every given filter. Overdue = the resolution clock still runs and its
    deadline is before ``as_of``."""
    return _page(db, "ticket", TICKET_TABLE, TICKET_FILTERS, criteria,
                 (overdue, "resolution_deadline", RESOLUTION_RUNNING, as_of), cursor, limit)


def list_complaints(db: ViewDatabase, criteria: Mapping[str, Any], *, as_of: datetime, overdue: bool | None = None,
                    cursor: str | None = None, limit: int = 50) -> dict[str, Any]:
    """Complaints matching every given filter. Overdue = the closed-loop clock still runs (the
    customer has not been notified) and its deadline is before ``as_of``."""
    return _page(db, "complaint", COMPLAINT_TABLE, COMPLAINT_FILTERS, criteria,
                 (overdue, "closed_loop_deadline", CLOSED_LOOP_RUNNING, as_of), cursor, limit)
