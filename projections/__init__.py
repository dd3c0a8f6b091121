"""Read models built from the ledger's event log with exactly-once tracking."""
