"""Append-only by role privileges too (PostgreSQL): the application may read and add history, never change it.

The recorders' triggers refuse UPDATE, DELETE and TRUNCATE of events, leaves, nodes and
checkpoints for everyone — but the owner of a table (and any superuser) can disable or drop a
trigger. So in production the application should not own the ledger's tables:

1. a separate owner role (the one that runs migrations) starts caseledger once, which creates
   the tables, triggers and functions;
2. as that owner, ``caseledger db harden --app-role caseledger_app`` grants the application role
   SELECT and INSERT on the event and log tables (plus the sequences and the writer-lock function
   it needs) and revokes UPDATE, DELETE, TRUNCATE, TRIGGER and REFERENCES on them from it and
   from PUBLIC; other tables in the schema (data keys, read models) stay writable by it;
3. the application then connects as ``caseledger_app``. Its recorder sees that the tables belong
   to another role and leaves their definitions alone; eventsourcing's writer lock (LOCK TABLE …
   IN EXCLUSIVE MODE, which PostgreSQL grants only with UPDATE/DELETE/TRUNCATE rights) is taken
   through ``caseledger_lock_events()``, a SECURITY DEFINER function owned by the owner.

Changing history then takes the owner's or a superuser's credentials, and ``caseledger verify``
still detects it. SQLite has no roles: there the triggers (and file permissions) are all there is.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from ledger.recorders import LOCK_FUNCTION, LOG_TABLES, LedgerPostgresRecorder

REVOKED = "UPDATE, DELETE, TRUNCATE, TRIGGER, REFERENCES"


def harden(recorder: Any, app_role: str | None = None) -> list[str]:
    """Apply the privileges above (run as the tables' owner); returns the statements executed."""
    if not isinstance(recorder, LedgerPostgresRecorder):
        raise ValueError("role privileges exist on PostgreSQL only; SQLite relies on the append-only triggers")
    schema = sql.Identifier(recorder.datastore.schema)
    grantees = sql.SQL("PUBLIC") if app_role is None else sql.SQL("PUBLIC, {0}").format(sql.Identifier(app_role))
    statements: list[sql.Composable] = []
    for table in (recorder.events_table_name, *LOG_TABLES):
        name = sql.SQL("{0}.{1}").format(schema, sql.Identifier(table))
        statements.append(sql.SQL("REVOKE " + REVOKED + " ON {0} FROM {1}").format(name, grantees))
    lock = sql.SQL("{0}.{1}()").format(schema, sql.Identifier(LOCK_FUNCTION))
    statements.append(sql.SQL("REVOKE EXECUTE ON FUNCTION {0} FROM PUBLIC").format(lock))
    with recorder.datastore.get_connection() as conn, conn.transaction():
        if app_role is not None:
            statements += _grants(conn, recorder, schema, sql.Identifier(app_role), lock)
        for statement in statements:
            conn.execute(statement)
        return [statement.as_string(conn) for statement in statements]


def _grants(conn: Any, recorder: Any, schema: sql.Identifier, role: sql.Identifier,
            lock: sql.Composable) -> list[sql.Composable]:
    append_only = (recorder.events_table_name, *LOG_TABLES)
    out: list[sql.Composable] = [sql.SQL("GRANT USAGE, CREATE ON SCHEMA {0} TO {1}").format(schema, role),
                                 sql.SQL("GRANT EXECUTE ON FUNCTION {0} TO {1}").format(lock, role)]
    for table in append_only:
        out.append(sql.SQL("GRANT SELECT, INSERT ON {0}.{1} TO {2}").format(schema, sql.Identifier(table), role))
    rows = conn.execute("SELECT c.relname AS name, c.relkind AS kind FROM pg_class c JOIN pg_namespace n "
                        "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'S')",
                        (recorder.datastore.schema,)).fetchall()
    for row in rows:
        name = sql.SQL("{0}.{1}").format(schema, sql.Identifier(row["name"]))
        if row["kind"] == "S":  # sequences behind bigserial columns (notification ids, checkpoint ids)
            out.append(sql.SQL("GRANT USAGE, SELECT ON SEQUENCE {0} TO {1}").format(name, role))
        elif row["name"] not in append_only:  # data keys, tombstones, read models: ordinary tables
            out.append(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON {0} TO {1}").format(name, role))
    return out
