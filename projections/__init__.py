"""Read models built from the ledger's event log with exactly-once tracking.

Above the write-side core, of which it uses only database access (``ledger.sqlaccess``): a read
model can never write an event. ``services`` and the entry points read these models.
"""
