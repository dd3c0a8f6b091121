"""Scheduled compliance jobs, run as their own process (never inside API workers).

An entry point beside ``api``: it calls ``services`` and the read models, and imports neither the
API nor the command line (``cli/scheduler.py`` is where ``caseledger scheduler`` starts it).
"""
