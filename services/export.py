"""Auditor export bundles: events in scope, an inclusion proof for each, the signed checkpoint and the
public key — everything needed to check them offline, without the database or the service.

A bundle is a folder:

- ``manifest.json``: format ``caseledger-bundle-v1``, origin, scope, created_at, tree size, event
  count, and the SHA-256 of every other file;
- ``checkpoint.note``: the signed checkpoint (C2SP signed-note) the proofs lead to;
- ``log-verifier.txt``: the log's public key as a signed-note verifier key;
- ``events.jsonl``: one line per event in log order: ``leaf_index``, ``position``,
  ``originator_id``, ``originator_version``, ``topic``, ``state_b64`` (the stored bytes, exactly),
  ``proof`` (hex hashes, RFC 9162 inclusion proof to the checkpoint's tree size) and ``event``, a
  readable decoding for people (not part of what is verified).

``verify_bundle`` re-encodes each event's leaf from the stored fields, checks its proof against the
checkpoint, checks the checkpoint's signature and every file's hash.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable
from uuid import UUID

from ledger.integrity.checkpoint import CheckpointError, load_public_key, open_note
from ledger.integrity.leaf import encode_leaf
from ledger.integrity.verifier import verify_bundle_entry

FORMAT = "caseledger-bundle-v1"
FILES = ("checkpoint.note", "log-verifier.txt", "events.jsonl")


def write_bundle(log: Any, events: Iterable[tuple[int, Any]], out: Path, scope: dict[str, Any], now: datetime,
                 describe: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """Write a bundle for ``events`` ((log position, domain event) pairs) under a fresh checkpoint."""
    checkpoint, note = log.publish_checkpoint(now)
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    with (out / "events.jsonl").open("w", encoding="utf-8") as f:
        for position, event in events:
            leaf_index, _, leaf_bytes = log.leaf_of(event.originator_id, event.originator_version)
            if leaf_index >= checkpoint.size:
                continue  # logged after the checkpoint was taken
            stored = _stored_fields(leaf_bytes)
            proof = log.inclusion_proof(leaf_index, checkpoint.size)
            line = {"leaf_index": leaf_index, "position": position, **stored,
                    "proof": [h.hex() for h in proof], "event": describe(event)}
            f.write(json.dumps(line, ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
    (out / "checkpoint.note").write_text(note, encoding="utf-8")
    (out / "log-verifier.txt").write_text(log.keys.verifier_text() + "\n", encoding="utf-8")
    manifest = {"format": FORMAT, "origin": checkpoint.origin, "scope": scope, "created_at": now.isoformat(),
                "tree_size": checkpoint.size, "events": count,
                "sha256": {name: hashlib.sha256((out / name).read_bytes()).hexdigest() for name in FILES}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest


def _stored_fields(leaf_bytes: bytes) -> dict[str, Any]:
    from ledger.integrity.leaf import decode_leaf

    leaf = decode_leaf(leaf_bytes)
    return {"originator_id": str(leaf.originator_id), "originator_version": leaf.originator_version,
            "topic": leaf.topic, "state_b64": base64.b64encode(leaf.state).decode("ascii")}


class BundleInvalid(Exception):
    pass


def verify_bundle(folder: Path) -> dict[str, Any]:
    """Check a bundle offline; returns a summary or raises BundleInvalid naming the first problem."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BundleInvalid(f"manifest.json unreadable: {e}") from None
    if manifest.get("format") != FORMAT:
        raise BundleInvalid(f"not a {FORMAT} bundle")
    for name in FILES:
        path = folder / name
        if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != manifest["sha256"].get(name):
            raise BundleInvalid(f"{name} is missing or does not match the manifest's hash")
    try:
        key_name, public_key = load_public_key((folder / "log-verifier.txt").read_text(encoding="utf-8"))
        checkpoint = open_note((folder / "checkpoint.note").read_text(encoding="utf-8"), public_key, key_name)
    except CheckpointError as e:
        raise BundleInvalid(f"checkpoint: {e}") from None
    count = 0
    for number, line in enumerate((folder / "events.jsonl").read_text(encoding="utf-8").splitlines(), start=1):
        try:
            entry = json.loads(line)
            leaf = encode_leaf(UUID(entry["originator_id"]), int(entry["originator_version"]), entry["topic"],
                               base64.b64decode(entry["state_b64"], validate=True))
            proof = [bytes.fromhex(h) for h in entry["proof"]]
            ok = verify_bundle_entry(leaf, int(entry["leaf_index"]), proof, checkpoint)
        except (KeyError, ValueError, TypeError) as e:
            raise BundleInvalid(f"events.jsonl line {number}: malformed ({e})") from None
        if not ok:
            raise BundleInvalid(f"events.jsonl line {number}: {entry.get('topic')} {entry.get('originator_id')} "
                                f"v{entry.get('originator_version')} is not in the signed log")
        count += 1
    if count != manifest.get("events"):
        raise BundleInvalid(f"the manifest lists {manifest.get('events')} events, the file has {count}")
    return {"events": count, "tree_size": checkpoint.size, "origin": checkpoint.origin,
            "checkpoint_time": checkpoint.time.isoformat()}
