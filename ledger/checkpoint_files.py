"""Signed checkpoints kept as files, outside the database.

Every checkpoint the ledger publishes is also written to ``CASELEDGER_CHECKPOINT_DIR`` (default
``<home>/checkpoints``) as ``<tree size>-<time>.note``, plus ``latest.note``. A copy of that folder
(or of any one note: sent to auditors, mailed, committed elsewhere) is what ``caseledger verify
--since`` checks the database against: someone who can rewrite the database — events, leaves and
the checkpoints stored beside them — cannot reach the copies, so truncating or rewriting the log
shows up as a checkpoint the stored events no longer reproduce.
"""

from __future__ import annotations

import os
from pathlib import Path

from ledger.integrity.checkpoint import Checkpoint

LATEST = "latest.note"


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


class CheckpointArchive:
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def write(self, checkpoint: Checkpoint, note: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = checkpoint.time.strftime("%Y%m%dT%H%M%S%fZ")
        path = self.folder / f"{checkpoint.size:012d}-{stamp}.note"
        _write_atomically(path, note)
        _write_atomically(self.folder / LATEST, note)
        return path


def read_notes(path: Path) -> list[tuple[str, str]]:
    """(file name, note) for one note file, or for every ``*.note`` in a folder (``latest.note`` is a
    copy of another, so it is skipped there). OSError if unreadable."""
    path = Path(path)
    files = sorted(p for p in path.glob("*.note") if p.name != LATEST) if path.is_dir() else [path]
    return [(str(p), p.read_text(encoding="utf-8")) for p in files]
