"""Auditor export bundles: the events in scope, an inclusion proof for each, a fresh signed checkpoint,
and a manifest signed by the log key that says what the scope is and that it is complete.

The format and its offline verification are in ``ledger.integrity.bundle`` (no database needed);
this module chooses the events and writes the files.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator
from uuid import UUID

from ledger.integrity.bundle import FORMAT, manifest_text, render_event
from ledger.integrity.checkpoint import sign_note
from ledger.integrity.leaf import decode_leaf
from ledger.transparency import LogError, TransparencyLog
from services.related import related_records

SCOPE_RULES = {
    "customer": "the customer's own events, and every event of each case, legal hold or disposition whose "
                "events name the customer (customer_id or subject), versions 1..n at the checkpoint",
    "ticket": "every event of the ticket and of each related record (services.related: originating interaction "
              "or feedback, surveys, SLA breaches, findings, holds and dispositions of it or its customer, audits "
              "and samples naming it), versions 1..n at the checkpoint",
    "complaint": "every event of the complaint and of each related record (as for a ticket), versions 1..n at "
                 "the checkpoint",
    "range": "every event at log positions from..to (to: the checkpoint's end when not given)",
    "period": "every event whose business time (occurred_at) is at or after from and before to, at the "
              "checkpoint; the signed leaf_list names each",
}
CASE_SCOPES = ("ticket", "complaint")


class ExportError(ValueError):
    """The scope names nothing in the ledger, or cannot be exported."""


@dataclass(frozen=True)
class Scope:
    kind: str  # customer | ticket | complaint | range | period
    id: str | None = None
    from_position: int = 1
    to_position: int | None = None
    from_time: datetime | None = None  # period: business time, from (inclusive) … to (exclusive)
    to_time: datetime | None = None

    def __post_init__(self) -> None:
        if self.kind not in SCOPE_RULES:
            raise ExportError(f"unknown scope {self.kind!r}; one of {', '.join(SCOPE_RULES)}")
        if self.kind == "period":
            if self.from_time is None or self.to_time is None or self.from_time.tzinfo is None \
                    or self.to_time.tzinfo is None:
                raise ExportError("a period export needs from and to, business times with a time zone")
            if self.from_time >= self.to_time:
                raise ExportError("from must be before to")
        elif self.kind != "range":
            try:
                object.__setattr__(self, "id", str(UUID(str(self.id))))
            except ValueError:
                raise ExportError(f"no {self.kind} {self.id} in the ledger: ids are UUIDs") from None

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {"kind": self.kind, "rule": SCOPE_RULES[self.kind]}
        if self.kind == "range":
            described.update({"from": self.from_position, "to": self.to_position})
        elif self.kind == "period":
            described.update({"from": self.from_time.isoformat(), "to": self.to_time.isoformat()})
        else:
            described["id"] = self.id
        return described


def _members(ledger: Any, scope: Scope, related: dict[str, str]) -> set[str] | None:
    """The aggregates in an aggregate scope (None for a range or period): one pass over the log."""
    if scope.kind in ("range", "period"):
        return None
    if scope.kind in CASE_SCOPES:
        return {scope.id, *related}
    members = set()
    after = 0
    while page := ledger.log(after=after, limit=1000):
        for _, event in page:
            oid = str(event.originator_id)
            names = (getattr(event, "customer_id", None), getattr(event, "subject", None))
            if scope.kind == "customer" and (oid == scope.id or scope.id in names):
                members.add(oid)
        after = page[-1][0]
    return members


def _leaves(log: TransparencyLog, ledger: Any, scope: Scope, size: int,
            related: dict[str, str]) -> Iterator[tuple[int, bytes]]:
    """(leaf index, leaf bytes) in scope under a tree of ``size`` leaves, in log order."""
    members = _members(ledger, scope, related)
    if members is not None:
        found = []
        for oid in members:
            version = 1
            while True:
                try:
                    index, _, leaf = log.leaf_of(oid, version)
                except LogError:  # no such version: the aggregate ends here (or is unknown)
                    break
                if index >= size:
                    break  # written after the checkpoint: not part of this bundle
                found.append((index, leaf))
                version += 1
        yield from sorted(found)
        return
    after = scope.from_position - 1 if scope.kind == "range" else 0
    while page := ledger.log(after=after, limit=1000):
        for position, event in page:
            if scope.kind == "period":
                occurred = (getattr(event, "meta", None) or {}).get("occurred_at")
                if occurred is None or not scope.from_time <= datetime.fromisoformat(occurred) < scope.to_time:
                    continue
            elif scope.to_position is not None and position > scope.to_position:
                return
            index, _, leaf = log.leaf_of(event.originator_id, event.originator_version)
            if index >= size:
                return
            yield index, leaf
        after = page[-1][0]


def write_bundle(log: TransparencyLog, ledger: Any, scope: Scope, out: Path, now: datetime,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Publish a checkpoint, then write the bundle of ``scope`` under it; returns the manifest.
    ``progress(done, total)`` is called as events are written (an export job shows it)."""
    checkpoint, note = log.publish_checkpoint(now)
    related = related_records(ledger, scope.id) if scope.kind in CASE_SCOPES else {}
    entries = list(_leaves(log, ledger, scope, checkpoint.size, related))
    if scope.kind != "range" and not entries:
        raise ExportError(f"no {scope.kind} {scope.id} in the ledger")
    out.mkdir(parents=True, exist_ok=True)
    last_version: dict[str, int] = {}
    indexes: list[int] = []
    with (out / "events.jsonl").open("w", encoding="utf-8") as f:
        for index, leaf_bytes in entries:
            leaf = decode_leaf(leaf_bytes)
            oid = str(leaf.originator_id)
            line = {"leaf_index": index, "originator_id": oid, "originator_version": leaf.originator_version,
                    "topic": leaf.topic, "state_b64": base64.b64encode(leaf.state).decode("ascii"),
                    "proof": [h.hex() for h in log.inclusion_proof(index, checkpoint.size)],
                    "event": render_event(oid, leaf.originator_version, leaf.topic, leaf.state)}
            f.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")
            last_version[oid] = leaf.originator_version
            indexes.append(index)
            if progress is not None:
                progress(len(indexes), len(entries))
    (out / "checkpoint.note").write_text(note, encoding="utf-8")
    (out / "log-verifier.txt").write_text(log.keys.verifier_text() + "\n", encoding="utf-8")
    rotations = [n for n in log.checkpoint_notes() if "\nkey " in n.partition("\n\n")[0]]
    if rotations:
        (out / "rotations.jsonl").write_text("".join(json.dumps(n) + "\n" for n in rotations), encoding="utf-8")
    manifest: dict[str, Any] = {
        "format": FORMAT, "origin": checkpoint.origin, "created_at": now.isoformat(), "scope": scope.describe(),
        "checkpoint": {"size": checkpoint.size, "root": checkpoint.root.hex(),
                       "sha256": hashlib.sha256((out / "checkpoint.note").read_bytes()).hexdigest()},
        "events_sha256": hashlib.sha256((out / "events.jsonl").read_bytes()).hexdigest(),
        "events": len(indexes), "personal_data": "sealed",
    }
    if scope.kind == "range":
        manifest["leaves"] = [indexes[0], indexes[-1]] if indexes else None
    elif scope.kind == "period":
        manifest["leaf_list"] = indexes
    else:
        manifest["aggregates"] = last_version
    if scope.kind in CASE_SCOPES:
        manifest["related"] = {oid: kind for oid, kind in related.items() if oid in last_version}
    signed = sign_note(manifest_text(manifest), log.keys.signing_key(), checkpoint.origin)
    (out / "manifest.note").write_text(signed, encoding="utf-8")
    return manifest
