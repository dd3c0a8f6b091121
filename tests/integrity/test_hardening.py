"""Append-only by privileges: after ``harden``, an ordinary application role can run the ledger —
append events, publish checkpoints, verify — but cannot UPDATE, DELETE or TRUNCATE history, even
where no trigger would stop it. SQLite has no roles; there ``harden`` says so."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from ledger.bootstrap import build, transparency_log
from ledger.hardening import harden
from ledger.keys import LogKeys
from ledger.recorders import LOG_TABLES
from ledger.settings import Settings


def as_role(database_url: str, role: str) -> str:
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}"))


def test_an_application_role_can_append_but_never_change_history(ledger, env, ctx, database_url):
    if not database_url.startswith("postgresql"):
        with pytest.raises(ValueError, match="PostgreSQL only"):
            harden(ledger.recorder, "caseledger_app")
        return
    role = f"app_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(database_url.split("?")[0], autocommit=True)
    admin.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        ledger.register_customer(ctx(), kind="individual", tier="vip", contact={})  # tables exist, owned by us
        executed = harden(ledger.recorder, role)
        assert any(s.startswith("REVOKE UPDATE, DELETE, TRUNCATE") for s in executed)

        app_env = {**env, "CASELEDGER_DATABASE_URL": as_role(database_url, role)}
        LogKeys.from_settings(Settings.from_environ(app_env)).init()
        app = build(app_env)  # starts without touching the owner's tables
        customer = app.register_customer(ctx(), kind="individual", tier="general", contact={})
        ticket = app.open_ticket(ctx(), customer_id=str(customer.id), channel="web")
        app.act("ticket", ticket.id, "classify", ctx(), {"priority": "normal", "complexity": "general",
                                                          "high_risk": False})
        log = transparency_log(app, app_env)
        log.publish_checkpoint(datetime.now(timezone.utc))
        assert log.verify().ok and log.size() == 4

        schema = ledger.recorder.datastore.schema
        with psycopg.connect(as_role(database_url, role).split("?")[0], autocommit=True) as conn:
            for table in (ledger.recorder.events_table_name, *LOG_TABLES):
                for statement in (f'UPDATE "{schema}"."{table}" SET {_column(table)} = {_column(table)}',
                                  f'DELETE FROM "{schema}"."{table}"', f'TRUNCATE "{schema}"."{table}"',
                                  f'ALTER TABLE "{schema}"."{table}" DISABLE TRIGGER ALL'):
                    with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
                        conn.execute(statement)
                    assert "append-only" not in str(refused.value)  # refused by privileges, not a trigger
        assert log.verify().ok
        app.close()
    finally:
        admin.execute(f'DROP OWNED BY "{role}"')
        admin.execute(f'DROP ROLE "{role}"')
        admin.close()


def _column(table: str) -> str:
    return {"merkle_leaves": "leaf_hash", "merkle_nodes": "hash", "merkle_checkpoints": "note"}.get(table, "state")
