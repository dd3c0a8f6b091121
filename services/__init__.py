"""Application services: use cases that need both the event store and the read models.

Retention and disposition, the compliance audit, the SLA job, API tokens and the disclosure log,
auditor replay, export bundles and the scheduled log audits. They sit above ``ledger`` (the
write-side core) and ``projections`` (read models), and below the entry points (``api``,
``scheduler``, ``cli``), which call them and never the other way round.
"""
