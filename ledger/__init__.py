"""The ledger: the event-sourced application service, its persistence, and its command line.

``ledger.bootstrap.build()`` is the one composition root: everything (database, policies,
calendar, tokens) is configured there from the environment.
"""
