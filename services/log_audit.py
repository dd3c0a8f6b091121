"""Verification of the transparency log for the scheduled integrity jobs: incremental and full.

Incremental (``integrity``, often): start from the tree head the previous run verified (size,
root and the log position of its last leaf) and check

1. the stored tree still has that root at that size (the perfect subtrees on its right edge are
   read back and folded: any rewrite of the verified part of the stored tree shows here);
2. every event written since, in log order, hashed as a leaf from its stored bytes
   (``encode_leaf`` / ``leaf_hash``) and appended to that edge, rebuilds exactly the stored tree's
   root at the new size — so no event was altered, removed or added outside the ledger;
3. every signed checkpoint in between (signatures checked with the verifier key) has the root
   the rebuilt tree had at its size.

It reads O(new events + log n) rows. It cannot see an *old* event's bytes being changed while
its stored leaf hash is kept: the full verification (``integrity_full``, daily) re-hashes every
event and checks every stored node, and names the first problem. The incremental check also
calls it to name a problem it found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.findings import INTEGRITY_OK, INTEGRITY_PROBLEM, INTEGRITY_PROBLEM_KEY
from ledger.integrity.leaf import encode_leaf
from ledger.integrity.merkle import EMPTY_ROOT, Frontier, leaf_hash

PAGE = 1000


@dataclass(frozen=True)
class Verified:
    """A tree head this verification vouched for, and the log position of its last leaf's event."""

    size: int
    root: bytes
    position: int

    def as_details(self) -> dict[str, Any]:
        return {"verified_size": self.size, "verified_root": self.root.hex(), "verified_position": self.position}

    @classmethod
    def from_details(cls, details: dict[str, Any]) -> Verified | None:
        if not details.get(INTEGRITY_OK) or "verified_position" not in details:
            return None
        return cls(int(details["verified_size"]), bytes.fromhex(details["verified_root"]),
                   int(details["verified_position"]))


START = Verified(0, EMPTY_ROOT, 0)


def verify_full(log: Any) -> dict[str, Any]:
    """The whole log, as ``caseledger verify`` does it; details for the job run."""
    report = log.verify()
    details: dict[str, Any] = {INTEGRITY_OK: report.ok, "mode": "full", "leaves_verified": report.leaves,
                               "checkpoints_checked": report.checkpoints_checked}
    if report.first_problem is not None:
        problem = report.first_problem
        details[INTEGRITY_PROBLEM] = (f"leaf {problem.leaf_index} (log position {problem.position}, "
                                      f"{problem.label}): {problem.description}")
        details[INTEGRITY_PROBLEM_KEY] = f"{problem.leaf_index}:{problem.position}"
    return details


def verify_incrementally(ledger: Any, log: Any, since: Verified | None) -> tuple[dict[str, Any], Verified | None]:
    """Verify what was added since ``since`` (None: from the empty log); returns the job run's
    details and the new verified head (None when something did not verify)."""
    since = since or START
    size = log.size()
    checkpoints = sorted((c for c in log.open_checkpoints() if since.size <= c.size <= size), key=lambda c: c.size)
    frontier = Frontier.load(since.size, log.get_node)
    problem = None
    if frontier.root() != since.root:
        problem = f"the stored tree no longer has the root verified at size {since.size}"
    checked = 0
    while checkpoints and checkpoints[0].size == since.size:
        if checkpoints.pop(0).root != since.root:
            problem = f"the checkpoint at tree size {since.size} does not have the root verified there"
        checked += 1
    position = since.position
    while problem is None and frontier.size < size:
        page = ledger.recorder.select_notifications(start=position + 1, limit=min(PAGE, size - frontier.size))
        if not page:
            problem = f"the log has {size} leaves but only {frontier.size} events"
            break
        for n in page:
            frontier.append(leaf_hash(encode_leaf(n.originator_id, n.originator_version, n.topic, bytes(n.state))))
            position = n.id
            while checkpoints and checkpoints[0].size == frontier.size:
                if checkpoints.pop(0).root != frontier.root():
                    problem = f"the checkpoint at tree size {frontier.size} does not match the events"
                checked += 1
            if problem:
                break
    if problem is None and frontier.root() != log.root(size):
        problem = f"the stored tree at size {size} does not match the events in the log"
    if problem is not None:
        details = verify_full(log)  # names the first problem (or finds none: then ours stands)
        if details[INTEGRITY_OK]:
            details.update({INTEGRITY_OK: False, INTEGRITY_PROBLEM: problem, INTEGRITY_PROBLEM_KEY: problem})
        return {**details, "mode": "incremental", "verified_from": since.size}, None
    verified = Verified(size, frontier.root(), position)
    return {INTEGRITY_OK: True, "mode": "incremental", "verified_from": since.size,
            "leaves_verified": size - since.size, "checkpoints_checked": checked, **verified.as_details()}, verified
