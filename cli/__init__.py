"""The ``caseledger`` command line, and the developer tools behind it.

An entry point, like ``api`` and ``scheduler``: it parses arguments, calls the services and the
ledger, and prints. ``serving`` (``serve --prod`` and ``make prod``), ``demo`` (the demo data set)
and ``throwaway_pg`` (a disposable PostgreSQL cluster for tests and benchmarks) live here because
only entry points and developer tools use them.
"""
