"""The statement that appends events and their log rows on PostgreSQL (used by ``ledger.recorders``).

One statement, after eventsourcing's table lock, writes the events, their leaves and — if the log
still has the size the plan was made for — the plan's interior nodes. The leaves do not depend on
where the log ends (a leaf is the hash of its event), so they always go in, numbered after the
log's actual last leaf; only the nodes do. The statement answers, in its first row, the log's
size before it (``top``: its largest leaf index) and, if the plan did not fit, the hashes of the
leaves the other processes appended after the plan's size (``newer``, at most ``NEWER_LEAVES``).
From those the recorder carries its cached right edge over to the actual size and sends the
nodes with the commit: a miss costs no round trip, and the table lock is held no longer than for
a hit. (It used to cost three: read the size, the stored right edge and the last leaves — while
every other writer waited on the lock, so that under 16 clients, when most appends miss, those
round trips serialised the writers.)

Everything is read in the statement's snapshot, taken after the table lock: no writer can slip
in between, and the leaves it inserts itself are not in it (a data-modifying WITH's rows are not
visible to the rest of its statement).
"""

from __future__ import annotations

from psycopg.sql import SQL, Composable

#: The most leaf hashes a miss reads back (32 bytes each); a process further behind than that
#: (idle while others appended) reads the stored right edge instead.
NEWER_LEAVES = 1024


def append_statement(events: Composable, leaves: Composable, nodes: Composable, oid: Composable) -> Composable:
    """Events, leaves and (if the plan fits) nodes in one statement; notification ids in the
    order of the events, ``logged`` (leaves written), and in the first row ``top`` and ``newer``."""
    return SQL(
        "WITH ev AS (INSERT INTO {events} (originator_id, originator_version, topic, state) SELECT * FROM "
        "unnest(%(ids)b::{oid}, %(versions)b::bigint[], %(topics)b::text[], %(states)b::bytea[]) "
        "RETURNING notification_id, originator_id, originator_version), "
        "head AS (SELECT MAX(leaf_index) AS top FROM {leaves}), "
        "fits AS (SELECT %(placed)b::bool AND top IS NOT DISTINCT FROM %(top)b::bigint AS ok FROM head), "
        # each leaf is joined to its event by (id, version) and numbered in notification-id order
        "lv AS (INSERT INTO {leaves} (leaf_index, notification_id, leaf_hash) "
        "SELECT COALESCE((SELECT top FROM head), -1) + row_number() OVER (ORDER BY ev.notification_id), "
        "ev.notification_id, h.leaf_hash FROM ev JOIN unnest(%(ids)b::{oid}, %(versions)b::bigint[], "
        "%(hashes)b::bytea[]) AS h(originator_id, originator_version, leaf_hash) "
        "USING (originator_id, originator_version) RETURNING 1), "
        "nd AS (INSERT INTO {nodes} (level, idx, hash) SELECT * FROM "
        "unnest(%(levels)b::int[], %(indexes)b::bigint[], %(digests)b::bytea[]) WHERE (SELECT ok FROM fits)) "
        "SELECT ev.notification_id, (SELECT COUNT(*) FROM lv) AS logged, "
        "CASE WHEN o.n = 1 THEN (SELECT top FROM head) END AS top, "
        "CASE WHEN o.n = 1 AND %(placed)b::bool AND NOT (SELECT ok FROM fits) THEN (SELECT "
        "array_agg(leaf_hash ORDER BY leaf_index) FROM {leaves} WHERE leaf_index >= %(size)b::bigint "
        "AND leaf_index < %(size)b::bigint + {newer}) END AS newer "
        "FROM ev JOIN unnest(%(ids)b::{oid}, %(versions)b::bigint[]) WITH ORDINALITY "
        "AS o(originator_id, originator_version, n) USING (originator_id, originator_version) ORDER BY o.n"
    ).format(events=events, leaves=leaves, nodes=nodes, oid=oid, newer=SQL(str(NEWER_LEAVES)))
