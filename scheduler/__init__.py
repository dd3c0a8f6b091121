"""Scheduled compliance jobs, run as their own process (never inside API workers)."""
