"""#17's acceptance on the command line, end to end (both backends): a 2019 helpdesk history is
imported, so its customer is due for destruction by the wall clock; then the four-eyes steps run
as token holders. A records manager cannot approve, one person cannot approve their own proposal
(even holding a second role), and a second person completes it."""

from __future__ import annotations

import json

from test_history_import import HISTORY, case_id, ndjson, run


def test_destruction_needs_two_people_with_their_own_tokens(env, token_env, tmp_path):
    assert run(env, "db", "init").exit_code == 0
    records = token_env("records_manager", actor="rm-chen")
    path = tmp_path / "helpdesk.ndjson"
    path.write_bytes(ndjson(HISTORY))
    assert run(records, "import-history", str(path)).exit_code == 0
    customer = str(case_id("customer", "C-1"))

    proposed = run(records, "retention", "propose", customer, "--reason", "retention period over")
    assert proposed.exit_code == 0, proposed.output
    disposition = proposed.stdout.strip()

    refused = run(records, "retention", "approve", disposition)  # the proposer's own token
    assert refused.exit_code == 1 and "may not dispositions.approve" in refused.stderr
    same_person = token_env("compliance_officer", actor="rm-chen")  # a second role, the same person
    refused = run(same_person, "retention", "approve", disposition)
    assert refused.exit_code == 1 and "different person" in refused.stderr, refused.stderr

    officer = token_env("compliance_officer", actor="co-xu")
    unappraised = run(officer, "retention", "approve", disposition)  # archives are appraised first (003 §2.4.1)
    assert unappraised.exit_code == 1 and "retention.appraisal_required" in unappraised.stderr, unappraised.stderr
    approved = run(officer, "retention", "approve", disposition, "--reason", "appraised: no lasting value")
    assert approved.exit_code == 0 and approved.stdout.split() == [disposition, "approved"]
    executed = run(officer, "retention", "execute", disposition)
    assert executed.exit_code == 0, executed.output
    certificate = json.loads(executed.stdout)
    assert (certificate["proposer"], certificate["approver"]) == ("rm-chen", "co-xu")
