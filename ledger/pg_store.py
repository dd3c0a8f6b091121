"""eventsourcing's PostgreSQL infrastructure, with the URL's libpq parameters passed through.

eventsourcing's factory hands psycopg's connection pool a fixed set of keyword arguments (dbname,
host, port, user, password). A libpq parameter it has no setting for would be dropped — above all
``target_session_attrs=read-write``, which makes each new connection look for the primary among the
URL's hosts. This factory is eventsourcing's, with those parameters (``POSTGRES_LIBPQ_OPTIONS``,
made by ``ledger.pgurl``) added to the pool's keyword arguments before it opens, so they hold for
every connection the pool ever makes, the ones that replace connections lost in a failover
included. Nothing else changes: the same datastore, pool and recorders (the library's recorder
test cases also run through it: tests/integrity/test_library_recorder_cases.py).

Selected in the composition root (``PERSISTENCE_MODULE``) only for URLs that carry such parameters.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.postgres import PostgresFactory

from ledger.pgurl import libpq_options


class LedgerPostgresFactory(PostgresFactory):
    def __init__(self, env: Any):
        super().__init__(env)
        kwargs = self.datastore.pool.kwargs  # the pool opens on first use: no connection made yet
        if not isinstance(kwargs, dict):
            raise TypeError(f"eventsourcing's pool keyword arguments are a {type(kwargs).__name__}, not a dict")
        kwargs.update(libpq_options(self.env))
