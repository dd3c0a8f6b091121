"""Full-log verification finds every kind of tampering, at the right leaf."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.integrity.checkpoint import Checkpoint, open_note, sign
from ledger.integrity.leaf import encode_leaf
from ledger.integrity.merkle import EMPTY_ROOT, Frontier, inclusion_proof, leaf_hash
from ledger.integrity.verifier import LeafRecord, VerificationReport, verify_bundle_entry, verify_log

N = 40
CHECKPOINT_SIZES = (0, 1, 7, 16, 40)
T0 = datetime(2025, 9, 1, tzinfo=timezone.utc)
ORIGIN = "caseledger.example/log"


def build_log() -> tuple[list[LeafRecord], dict[tuple[int, int], bytes], list[Checkpoint]]:
    tickets = [uuid.UUID(int=k + 1) for k in range(5)]
    records, store = [], {}
    checkpoints = [Checkpoint(ORIGIN, 0, EMPTY_ROOT, T0)]  # the empty tree
    frontier = Frontier()
    for i in range(N):
        ticket, version = tickets[i % 5], i // 5 + 1
        data = encode_leaf(ticket, version, "domain.ticket:Ticket.Event", b'{"i": %d, "actor": "agent-7"}' % i)
        digest = leaf_hash(data)
        records.append(LeafRecord(i, digest, data, position=100 + 3 * i, label=f"ticket {ticket} v{version}"))
        store.update({(level, index): h for level, index, h in frontier.append(digest)})
        if frontier.size in CHECKPOINT_SIZES:
            checkpoints.append(Checkpoint(ORIGIN, frontier.size, frontier.root(), T0 + timedelta(minutes=i)))
    return records, store, checkpoints


RECORDS, STORE, CHECKPOINTS = build_log()


def problem_at(report: VerificationReport) -> int:
    assert not report.ok and report.first_problem is not None
    return report.first_problem.leaf_index


def test_clean_log_passes_with_signed_checkpoints() -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes(32))
    opened = [open_note(sign(cp, key, ORIGIN), key.public_key(), ORIGIN) for cp in CHECKPOINTS]
    seen: list[int] = []
    report = verify_log(iter(RECORDS), opened, progress=seen.append)
    assert report == VerificationReport(ok=True, leaves=N, first_problem=None, checkpoints_checked=len(CHECKPOINTS))
    assert seen[-1] == N


def test_checkpoint_order_does_not_matter_and_duplicates_are_all_checked() -> None:
    report = verify_log(RECORDS, list(reversed(CHECKPOINTS)) + [CHECKPOINTS[2]])
    assert report.ok and report.checkpoints_checked == len(CHECKPOINTS) + 1


def test_flipped_byte_in_event_bytes() -> None:
    for where in (25, 40, -1):  # in the state, in the topic, at the very end
        records = list(RECORDS)
        data = bytearray(records[13].leaf_bytes)
        data[where] ^= 0x01
        records[13] = dataclasses.replace(records[13], leaf_bytes=bytes(data))
        report = verify_log(records, CHECKPOINTS)
        assert problem_at(report) == 13
        assert report.first_problem.position == RECORDS[13].position
        assert report.first_problem.label == RECORDS[13].label
        assert report.leaves == 13


def test_flipped_byte_in_the_leaf_header_is_a_malformed_leaf() -> None:
    records = list(RECORDS)
    records[13] = dataclasses.replace(records[13], leaf_bytes=b"X" + records[13].leaf_bytes[1:])
    report = verify_log(records, CHECKPOINTS)
    assert problem_at(report) == 13 and "well-formed" in report.first_problem.description


def test_altered_stored_leaf_hash() -> None:
    records = list(RECORDS)
    records[13] = dataclasses.replace(records[13], stored_leaf_hash=hashlib.sha256(b"x").digest())
    assert problem_at(verify_log(records, CHECKPOINTS)) == 13


def test_deleted_record() -> None:
    records = RECORDS[:13] + RECORDS[14:]
    report = verify_log(records, CHECKPOINTS)
    assert problem_at(report) == 13 and "found leaf 14" in report.first_problem.description


def test_deleted_record_renumbered_and_rehashed_fails_at_the_next_checkpoint() -> None:
    records = [dataclasses.replace(r, leaf_index=k) for k, r in enumerate(RECORDS[:13] + RECORDS[14:])]
    report = verify_log(records, CHECKPOINTS)
    assert problem_at(report) == 15 and "checkpoint at tree size 16" in report.first_problem.description


def test_swapped_records() -> None:
    records = list(RECORDS)
    records[13], records[20] = records[20], records[13]
    assert problem_at(verify_log(records, CHECKPOINTS)) == 13


def test_swapped_events_with_their_hashes_fail_at_the_checkpoint() -> None:
    records = list(RECORDS)
    a, b = records[13], records[14]
    records[13] = dataclasses.replace(b, leaf_index=13)
    records[14] = dataclasses.replace(a, leaf_index=14)
    assert problem_at(verify_log(records, CHECKPOINTS)) == 15  # the first checkpoint covering them


def test_inserted_forged_record() -> None:
    data = encode_leaf(uuid.UUID(int=99), 1, "domain.ticket:Ticket.Event", b'{"forged": true}')
    forged = LeafRecord(13, leaf_hash(data), data, position=138, label="ticket forged v1")
    report = verify_log(RECORDS[:13] + [forged] + RECORDS[13:], CHECKPOINTS)
    assert problem_at(report) == 13 and "appears again" in report.first_problem.description
    # Renumbered so that indexes are gapless: caught by the first checkpoint after it.
    renumbered = [dataclasses.replace(r, leaf_index=k) for k, r in enumerate(RECORDS[:13] + [forged] + RECORDS[13:])]
    assert problem_at(verify_log(renumbered, CHECKPOINTS)) == 15


def test_checkpoint_with_a_different_root() -> None:
    bad = Checkpoint(ORIGIN, 16, hashlib.sha256(b"forged root").digest(), T0)
    report = verify_log(RECORDS, [bad if cp.size == 16 else cp for cp in CHECKPOINTS])
    assert problem_at(report) == 15
    assert report.first_problem.position == RECORDS[15].position
    assert report.checkpoints_checked == 3  # sizes 0, 1 and 7 passed before it
    assert problem_at(verify_log(RECORDS, [*CHECKPOINTS, bad])) == 15  # next to a good one too
    bad_empty = Checkpoint(ORIGIN, 0, hashlib.sha256(b"x").digest(), T0)
    assert problem_at(verify_log(RECORDS, [bad_empty])) == 0


def test_truncated_log() -> None:
    report = verify_log(RECORDS[:35], CHECKPOINTS)
    assert problem_at(report) == 35
    assert report.first_problem.position is None and "missing" in report.first_problem.description
    assert report.leaves == 35


def test_missing_event_and_leaf_index_gap_at_start() -> None:
    records = list(RECORDS)
    records[5] = dataclasses.replace(records[5], leaf_bytes=None)
    assert problem_at(verify_log(records, CHECKPOINTS)) == 5
    assert problem_at(verify_log(RECORDS[1:], CHECKPOINTS)) == 0


def test_verify_bundle_entry() -> None:
    checkpoint = CHECKPOINTS[-1]
    get_node = lambda level, index: STORE[(level, index)]  # noqa: E731
    for record in RECORDS:
        proof = inclusion_proof(record.leaf_index, checkpoint.size, get_node)
        assert verify_bundle_entry(record.leaf_bytes, record.leaf_index, proof, checkpoint)
        assert not verify_bundle_entry(record.leaf_bytes + b"x", record.leaf_index, proof, checkpoint)
        assert not verify_bundle_entry(record.leaf_bytes, (record.leaf_index + 1) % N, proof, checkpoint)
    proof = inclusion_proof(3, 16, get_node)
    assert verify_bundle_entry(RECORDS[3].leaf_bytes, 3, proof, CHECKPOINTS[3])
    assert not verify_bundle_entry(RECORDS[3].leaf_bytes, 3, proof, checkpoint)  # other tree
    for hostile in (None, "proof", [None], [b"short"], 5):
        assert verify_bundle_entry(RECORDS[3].leaf_bytes, 3, hostile, CHECKPOINTS[3]) is False
    assert verify_bundle_entry("text", 3, proof, CHECKPOINTS[3]) is False
    assert verify_bundle_entry(RECORDS[3].leaf_bytes, -3, proof, CHECKPOINTS[3]) is False
    assert verify_bundle_entry(RECORDS[3].leaf_bytes, 3, proof, None) is False


@pytest.mark.parametrize("every", [1, 7])
def test_progress_is_reported(every: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ledger.integrity.verifier.PROGRESS_EVERY", every)
    seen: list[int] = []
    verify_log(RECORDS, CHECKPOINTS, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == N and len(seen) >= N // every
