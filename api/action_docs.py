"""What each action on an existing record does, in words for people reading the OpenAPI document
(its ``summary``). An action added to ``ledger.kinds.ACTIONS`` and ``api.schemas.ACTION_SCHEMAS``
needs a line here too: ``tests/api/test_openapi_contract.py`` fails on an operation without one."""

from __future__ import annotations

#: What each action does, for people reading the OpenAPI document: (kind, action) -> summary.
ACTION_SUMMARIES: dict[str, dict[str, str]] = {
    "customer": {
        "change_tier": "Move a customer to another service tier",
        "update_contact": "Replace a customer's contact details (personal data)",
        "set_consents": "Record what a customer consents to (surveys, marketing…)",
    },
    "interaction": {
        "register": "Register a contact, with you as its first-contact agent (首问负责)",
        "route": "Route a contact to a queue",
        "close": "Close a contact, saying whether it was resolved on first contact",
    },
    "ticket": {
        "classify": "Set a ticket's priority, complexity and risk (starts its resolution clock)",
        "assign": "Assign a ticket to a handler and team",
        "respond_first": "Record the first response to the customer",
        "start_work": "Start working on an assigned ticket",
        "pause_clock": "Pause the resolution clock (waiting on the customer)",
        "resume_clock": "Resume a paused resolution clock",
        "resolve": "Resolve a ticket (goes to second review when complex, major or high-risk)",
        "review": "Approve or return a resolution (second person, 双人复核)",
        "feed_back_result": "Tell the customer the result",
        "record_acceptance": "Record whether the customer accepts the result",
        "close": "Close an accepted ticket",
        "reopen": "Reopen a ticket the customer did not accept",
        "archive": "Archive a closed ticket",
        "update_progress": "Tell the customer how work on the ticket is going",
        "update_progress": "Record a progress update to the customer (the first one starts tracking)",
    },
    "complaint": {
        "classify": "Set a complaint's type and response level",
        "respond_first": "Record the first response to the complainant",
        "reassign": "Hand a complaint to another handler",
        "start_investigation": "Start investigating a complaint",
        "add_evidence": "Attach a piece of evidence to a complaint",
        "escalate": "Escalate a complaint to the next rung",
        "decide_remedy": "Decide the remedy (compensation, rectification…)",
        "notify_customer": "Notify the customer of the outcome (closes the loop)",
        "record_evaluation": "Record the customer's evaluation of the handling",
        "archive": "Archive a complaint",
        "record_root_cause": "Record the root cause of a complaint",
        "respond_first": "Record the first response to the complaining customer",
        "reassign": "Hand a complaint to another handler (needs a reason)",
    },
    "feedback": {
        "respond": "Acknowledge feedback to the customer",
        "reply": "Reply to feedback with what was done",
    },
}
