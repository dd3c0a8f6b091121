"""Offline verification of an auditor's export bundle. Reads files only: no database, no server.

A bundle (format ``caseledger-bundle-v2``) is a folder:

- ``manifest.note``: a signed note (log key) whose text is the line ``caseledger-bundle-manifest/v2``
  then one line of JSON: origin, scope (and the rule that chose it), the checkpoint (size, root,
  SHA-256 of ``checkpoint.note``), the SHA-256 of ``events.jsonl``, the event count and the
  completeness claim — per aggregate the last version at the checkpoint (every version 1..n is in
  the bundle), or for a log range the first and last leaf (every leaf between is in the bundle),
  or for a business-time period (scope ``period``) the ``leaf_list`` of every leaf whose event
  happened in it (each listed leaf is in the bundle, and each event's ``occurred_at``, read from
  the signed bytes, lies in the period). A case scope (``ticket``, ``complaint``) also names its
  ``related`` records (id → kind): each is one of the claimed aggregates, each is linked to the case
  through the ids the events name, and the records the case's own events name as their origin
  (``interaction_id``, ``feedback_id``) are in the bundle;
- ``checkpoint.note``: the signed checkpoint (C2SP tlog-checkpoint) that every proof leads to;
- ``events.jsonl``: one event per line, in log order: ``leaf_index``, the stored fields the leaf
  hash covers (``originator_id``, ``originator_version``, ``topic``, ``state_b64``), the RFC 9162
  inclusion ``proof``, and ``event``, a readable rendering of those stored bytes;
- ``rotations.jsonl`` (only after key rotations): the log's rotation checkpoints, so a verifier
  pinned to an older key can follow the log to the key that signed this bundle;
- ``log-verifier.txt``: the key the bundle says signed it. **Never trusted**: it is only shown.

Personal data is never in clear in a bundle: the stored bytes hold it sealed (AES-GCM under the
customer's data key, see ``ledger.crypto``), and the readable copy shows each personal field as
``"[sealed]"``. After crypto-shredding a bundle looks the same — the sealed bytes are still what
the log hashed, and no key exists to open them; the customer's destruction certificate is among
the events of a customer bundle.

``verify_bundle`` trusts only the keys the caller pins (``TrustSet``). It re-derives every readable
field from the stored bytes and checks every claim, and the first problem raises ``BundleInvalid``
naming the file, the line and the reason; a bundle signed by a key that is not pinned raises
``UntrustedSignature``, naming that key.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from ledger.integrity.checkpoint import Checkpoint, CheckpointError
from ledger.integrity.leaf import encode_leaf
from ledger.integrity.trust import TrustSet, UntrustedSignature
from ledger.integrity.verifier import verify_bundle_entry

FORMAT = "caseledger-bundle-v2"
MANIFEST_HEADER = "caseledger-bundle-manifest/v2"
SEALED = "[sealed]"
_ENVELOPE = {"timestamp", "originator_topic", "meta", "personal"}


class BundleInvalid(Exception):
    """The bundle does not prove what it claims; the message names the file, line and reason."""


def manifest_text(manifest: dict[str, Any]) -> str:
    """The signed text of a manifest: a header line and one line of ASCII JSON."""
    return f"{MANIFEST_HEADER}\n{json.dumps(manifest, sort_keys=True, ensure_ascii=True, separators=(',', ':'))}\n"


def _plain(value: Any) -> Any:
    """eventsourcing's JSON transcoding wraps UUIDs, datetimes, decimals… as {"_type_", "_data_"}."""
    if isinstance(value, dict):
        if set(value) == {"_type_", "_data_"}:
            return _plain(value["_data_"])
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def render_event(originator_id: str, version: int, topic: str, state: bytes) -> dict[str, Any]:
    """The readable copy of one stored event, made from the stored bytes alone."""
    rendered: dict[str, Any] = {"aggregate_id": originator_id, "version": version, "topic": topic,
                                "type": topic.rpartition(":")[2]}
    try:
        stored = json.loads(state)
    except ValueError:
        return {**rendered, "unreadable": "stored bytes are not JSON"}
    if not isinstance(stored, dict):
        return {**rendered, "unreadable": "stored bytes are not a JSON object"}
    personal = stored.get("personal")
    if isinstance(personal, dict) and "sealed" in personal:
        personal = {"subject": personal.get("subject"),
                    "fields": {str(name): SEALED for name in personal.get("names") or []}}
    return {**rendered, "recorded_at": _plain(stored.get("timestamp")), "meta": _plain(stored.get("meta")),
            "data": {k: _plain(v) for k, v in stored.items() if k not in _ENVELOPE},
            "personal": _plain(personal)}


def _first_difference(expected: Any, found: Any, path: str = "event") -> str:
    if isinstance(expected, dict) and isinstance(found, dict):
        for key in sorted(set(expected) | set(found)):
            if key not in found or key not in expected:
                return f"{path}.{key}"
            if expected[key] != found[key]:
                return _first_difference(expected[key], found[key], f"{path}.{key}")
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read(folder: Path, name: str) -> str:
    try:
        return (folder / name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleInvalid(f"{name}: cannot be read ({exc})") from None


def _open_manifest(folder: Path, trust: TrustSet) -> dict[str, Any]:
    if (folder / "rotations.jsonl").exists():
        for number, line in enumerate(_read(folder, "rotations.jsonl").splitlines(), start=1):
            try:
                trust.open_checkpoint(json.loads(line))
            except UntrustedSignature:
                continue  # announced by a key we do not trust: it teaches us nothing
            except (ValueError, TypeError, CheckpointError) as exc:
                raise BundleInvalid(f"rotations.jsonl line {number}: {exc}") from None
    text, key = trust.open_note(_read(folder, "manifest.note"))  # UntrustedSignature propagates
    header, _, body = text.partition("\n")
    try:
        manifest = json.loads(body)
    except ValueError:
        manifest = None
    if header != MANIFEST_HEADER or not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleInvalid(f"manifest.note: not a {FORMAT} manifest")
    if manifest.get("origin") != key.name:
        raise BundleInvalid(f"manifest.note: origin {manifest.get('origin')!r} is not the signing key's {key.name!r}")
    return manifest


def _open_checkpoint(folder: Path, manifest: dict[str, Any], trust: TrustSet) -> Checkpoint:
    claimed = manifest.get("checkpoint") or {}
    if _sha256(folder / "checkpoint.note") != claimed.get("sha256"):
        raise BundleInvalid("checkpoint.note: does not match the hash in the signed manifest")
    try:
        checkpoint, _ = trust.open_checkpoint(_read(folder, "checkpoint.note"))
    except UntrustedSignature:
        raise
    except CheckpointError as exc:
        raise BundleInvalid(f"checkpoint.note: {exc}") from None
    if (checkpoint.origin, checkpoint.size, checkpoint.root.hex()) != (manifest["origin"], claimed.get("size"),
                                                                        claimed.get("root")):
        raise BundleInvalid("checkpoint.note: origin, size or root differ from the signed manifest")
    return checkpoint


def _check_line(number: int, line: str, checkpoint: Checkpoint, after: int) -> tuple[int, str, int]:
    """(leaf index, aggregate id, version) of one events.jsonl line, or BundleInvalid."""
    where = f"events.jsonl line {number}"
    try:
        entry = json.loads(line)
        index, oid, version, topic = (entry["leaf_index"], entry["originator_id"], entry["originator_version"],
                                      entry["topic"])
        if not (type(index) is int and type(version) is int and isinstance(oid, str) and isinstance(topic, str)):
            raise TypeError("leaf_index, originator_version must be integers; originator_id, topic text")
        state = base64.b64decode(entry["state_b64"], validate=True)
        leaf = encode_leaf(UUID(oid), version, topic, state)
        proof = [bytes.fromhex(h) for h in entry["proof"]]
        readable = entry["event"]
    except (KeyError, ValueError, TypeError) as exc:
        raise BundleInvalid(f"{where}: malformed ({exc})") from None
    if index <= after:
        raise BundleInvalid(f"{where}: leaf {index} comes after leaf {after}: lines reordered or duplicated")
    if not verify_bundle_entry(leaf, index, proof, checkpoint):
        raise BundleInvalid(f"{where}: {topic} {oid} v{version} is not leaf {index} of the signed log")
    expected = render_event(str(UUID(oid)), version, topic, state)
    if readable != expected:
        field = _first_difference(expected, readable)
        raise BundleInvalid(f"{where}: readable field {field} differs from the stored bytes the log signed")
    return index, str(UUID(oid)), version


def verify_bundle(folder: Path, trust: TrustSet) -> dict[str, Any]:
    """Check a bundle against the pinned keys; returns a summary, else raises (see the module doc)."""
    folder = Path(folder)
    manifest = _open_manifest(folder, trust)
    checkpoint = _open_checkpoint(folder, manifest, trust)
    if _sha256(folder / "events.jsonl") != manifest.get("events_sha256"):
        raise BundleInvalid("events.jsonl: does not match the hash in the signed manifest")
    last_version: dict[str, int] = {}
    leaves: list[int] = []
    readable: list[dict[str, Any]] = []  # each line's readable event, already checked against the signed bytes
    by_aggregate = "aggregates" in manifest  # else a log range, which may start mid-aggregate
    for number, line in enumerate(_read(folder, "events.jsonl").splitlines(), start=1):
        index, oid, version = _check_line(number, line, checkpoint, leaves[-1] if leaves else -1)
        readable.append(json.loads(line)["event"])
        if by_aggregate and version != last_version.get(oid, 0) + 1:
            raise BundleInvalid(f"events.jsonl line {number}: {oid} v{version} follows "
                                f"v{last_version.get(oid, 0)}: versions in between are missing")
        last_version[oid] = version
        leaves.append(index)
    _check_complete(manifest, last_version, leaves)
    _check_scope(manifest, readable, last_version)
    return {"events": len(leaves), "tree_size": checkpoint.size, "origin": checkpoint.origin,
            "checkpoint_time": checkpoint.time.isoformat(), "scope": manifest.get("scope")}


def _check_complete(manifest: dict[str, Any], last_version: dict[str, int], leaves: list[int]) -> None:
    """The signed completeness claim holds: nothing in scope was left out, nothing else was added."""
    if manifest.get("events") != len(leaves):
        raise BundleInvalid(f"events.jsonl: the signed manifest lists {manifest.get('events')} events, "
                            f"the file has {len(leaves)}")
    if "aggregates" in manifest:
        claimed = manifest["aggregates"]
        for oid, version in sorted(claimed.items()):
            if last_version.get(oid, 0) != version:
                raise BundleInvalid(f"events.jsonl: {oid} ends at v{last_version.get(oid, 0)}, the signed "
                                    f"manifest says v{version}: events at the end are missing")
        extra = sorted(set(last_version) - set(claimed))
        if extra:
            raise BundleInvalid(f"events.jsonl: {extra[0]} is not in the signed manifest's scope")
    if "leaves" in manifest:
        first, last = manifest["leaves"] or (0, -1)
        if leaves != list(range(first, last + 1)):
            raise BundleInvalid(f"events.jsonl: the signed range is leaves {first}..{last}, every one of them; "
                                "some are missing")
    if "leaf_list" in manifest and leaves != manifest["leaf_list"]:
        missing = sorted(set(manifest["leaf_list"] or []) - set(leaves))
        raise BundleInvalid(f"events.jsonl: the signed manifest lists leaf {missing[0] if missing else '?'} of the "
                            "period, which is missing" if missing else
                            "events.jsonl: holds leaves the signed manifest's leaf_list does not name")
    if (manifest.get("scope") or {}).get("kind") == "period" and "leaf_list" not in manifest:
        raise BundleInvalid("manifest.note: a period bundle must list its leaves (leaf_list)")


ORIGIN_FIELDS = ("interaction_id", "feedback_id")  # a case's own events name where it came from


def _ids_in(value: Any) -> set[str]:
    if isinstance(value, str) and len(value) == 36:
        try:
            return {str(UUID(value))}
        except ValueError:
            return set()
    if isinstance(value, dict):
        return set().union(*map(_ids_in, value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*map(_ids_in, value)) if value else set()
    return set()


def _check_scope(manifest: dict[str, Any], events: list[dict[str, Any]], last_version: dict[str, int]) -> None:
    """The scope's own rules: a period's events happened in it; a case's related records are linked to it."""
    scope = manifest.get("scope") or {}
    if scope.get("kind") == "period":
        try:
            first, end = datetime.fromisoformat(scope["from"]), datetime.fromisoformat(scope["to"])
        except (KeyError, TypeError, ValueError):
            raise BundleInvalid("manifest.note: a period scope names its from and to times") from None
        for number, event in enumerate(events, start=1):
            occurred = (event.get("meta") or {}).get("occurred_at")
            try:
                inside = first <= datetime.fromisoformat(occurred) < end
            except (TypeError, ValueError):
                inside = False
            if not inside:
                raise BundleInvalid(f"events.jsonl line {number}: happened at {occurred}, outside the signed period "
                                    f"{scope['from']} .. {scope['to']}")
    if "related" not in manifest:
        return
    case, related = scope.get("id"), manifest["related"]
    if not isinstance(related, dict) or set(manifest.get("aggregates") or {}) != {case, *related}:
        raise BundleInvalid("manifest.note: the aggregates are not exactly the case and its related records")
    names: dict[str, set[str]] = {}
    for event in events:
        names.setdefault(event["aggregate_id"], set()).update(_ids_in(event.get("data")))
    origins = {ref for event in events if event["aggregate_id"] == case
               for name in ORIGIN_FIELDS for ref in _ids_in((event.get("data") or {}).get(name))}
    missing = sorted(origins - set(last_version))
    if missing:
        raise BundleInvalid(f"events.jsonl: the case's events name {missing[0]} as their origin, which is not in "
                            "the bundle: a related record is missing")
    linked, shared = {case}, set(names.get(case, set()))
    while True:  # linked: the case, and every record naming or named by (or sharing an id with) a linked one
        found = {oid for oid, named in names.items() if oid not in linked and (named & (shared | linked) or oid in shared)}
        if not found:
            break
        linked |= found
        for oid in found:
            shared |= names[oid]
    stray = sorted(set(names) - linked)
    if stray:
        raise BundleInvalid(f"events.jsonl: {stray[0]} names nothing of the case {case}: not a related record")
