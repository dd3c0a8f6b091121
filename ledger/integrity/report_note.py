"""Signed review reports: a C2SP signed note (the log's Ed25519 key, as for checkpoints and bundle
manifests) that commits to one report file by its SHA-256. Reads files only, like ``bundle``.

A report ``<period>-<hash8>.json`` has beside it ``<same name>.note``, whose signed text is::

    caseledger-review-report/v1
    kind <review kind>
    period <period name>
    sha256 <SHA-256 of the report file, lowercase hex>

The ledger also records the report's SHA-256 in its ``ReviewReport.Issued`` event, so the file is
bound twice: by the key (offline, :func:`verify_report`) and by the log (the event is a leaf).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.integrity.checkpoint import sign_note
from ledger.integrity.trust import TrustSet

HEADER = "caseledger-review-report/v1"
_LINE = re.compile(r"(kind|period|sha256) ([!-~]+)")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ReportInvalid(Exception):
    """The report file does not match its signed note, or the note is not a report note."""


def note_path(report: Path) -> Path:
    return report.with_name(report.name + ".note")


def report_text(kind: str, period: str, sha256: str) -> str:
    return f"{HEADER}\nkind {kind}\nperiod {period}\nsha256 {sha256}\n"


def sign_report(data: bytes, kind: str, period: str, key: Ed25519PrivateKey, origin: str) -> str:
    """The signed note for a report file's bytes."""
    return sign_note(report_text(kind, period, hashlib.sha256(data).hexdigest()), key, origin)


def verify_report(report: Path, trust: TrustSet) -> dict[str, str]:
    """Check ``report`` against its ``.note`` with the pinned keys; returns kind, period, sha256 and
    the signing key, else raises ReportInvalid (UntrustedSignature / CheckpointError propagate)."""
    report = Path(report)
    try:
        data = report.read_bytes()
        note = note_path(report).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportInvalid(f"{report}: cannot read the report or its note ({exc})") from None
    text, key = trust.open_note(note)
    lines = text.splitlines()
    fields = dict(m.groups() for m in map(_LINE.fullmatch, lines[1:]) if m)
    if not lines or lines[0] != HEADER or len(lines) != 4 or set(fields) != {"kind", "period", "sha256"} \
            or not _SHA256.fullmatch(fields["sha256"]):
        raise ReportInvalid(f"{note_path(report).name}: not a {HEADER} note")
    found = hashlib.sha256(data).hexdigest()
    if found != fields["sha256"]:
        raise ReportInvalid(f"{report.name}: its SHA-256 is {found}, the signed note says {fields['sha256']}: "
                            "the file was changed after it was signed")
    return {**fields, "signed_by": key.label}
