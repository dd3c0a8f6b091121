"""A hash index on ``merkle_leaves.leaf_hash`` (PostgreSQL only), for the public lookup of a leaf by hash.

Why: ``GET /log/proof/inclusion?leaf_hash=…`` answers anyone, without a token. Without an index it
would scan the leaves, so it is bounded (``ledger.logproofs.LEAF_HASH_SCAN``: the newest leaves
only); with this index it finds any leaf at O(1) cost. A *hash* index because the lookup is by
equality only: it keeps a 4-byte hash code per leaf instead of the 32-byte value a B-tree would,
it is WAL-logged (PostgreSQL >= 10), and it costs one index insert per appended event.

Created once at application start (``CREATE INDEX IF NOT EXISTS``, under the lock the recorder
takes to create its tables, so workers starting together do not race). On a large existing log
the first start builds it while appends wait; to avoid that, create it beforehand as the tables'
owner with ``CREATE INDEX CONCURRENTLY merkle_leaves_leaf_hash ON merkle_leaves USING hash
(leaf_hash)``. A role that does not own the tables (``ledger.hardening``) may not create it: the
application then logs a warning and keeps to bounded lookups. SQLite gets no index (one B-tree
per commit on purpose, see ``ledger.transparency``): its lookups stay bounded.
"""

from __future__ import annotations

import logging

from eventsourcing.persistence import PersistenceError
from psycopg import errors

from ledger.transparency import TransparencyLog

INDEX_NAME = "merkle_leaves_leaf_hash"
log = logging.getLogger("caseledger.log")


def ensure_leaf_hash_index(transparency_log: TransparencyLog) -> bool:
    """Make sure the index exists (PostgreSQL); whether lookups by leaf hash can use it."""
    if not transparency_log.pg:
        return False
    access = transparency_log.access
    schema = transparency_log.recorder.datastore.schema
    qualified = f'"{schema}".{INDEX_NAME}' if schema else INDEX_NAME
    valid = "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(?)"
    try:
        with access.schema_transaction() as cursor:
            found = cursor.rows(valid, (qualified,))
            if not found:
                cursor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX_NAME} ON {{leaves}} USING hash (leaf_hash)")
                found = cursor.rows(valid, (qualified,))
    except (errors.InsufficientPrivilege, PersistenceError) as e:  # eventsourcing wraps psycopg's errors
        if not isinstance(e, errors.InsufficientPrivilege) and not isinstance(e.__cause__, errors.InsufficientPrivilege):
            raise
        log.warning("cannot create index %s (the tables belong to another role): lookups of leaves by hash "
                    "scan only the newest leaves; create it as the owner to lift that", INDEX_NAME)
        return False
    return bool(found and found[0][0])
