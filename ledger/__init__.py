"""The write-side core: the event-sourced application, its recorders, the Merkle log, crypto and keys.

Imports ``domain`` only. ``ledger.settings.Settings`` reads the environment (the only module that
does); ``ledger.bootstrap.build(settings)`` is the composition root that turns settings into a
``CaseLedger``. Read models (``projections``), use cases that need them (``services``) and the
entry points (``api``, ``scheduler``, ``cli``) sit above and are never imported from here.
"""
