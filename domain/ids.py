"""Name-based ids (UUID version 5) as text, without building ``UUID`` objects.

Read models key their rows by the text of deterministic ids (findings, SLA breaches) and a rebuild
makes one or two per event; ``str(uuid.uuid5(…))`` spends more on ``UUID()``'s argument handling
and formatting than on the SHA-1 itself. :func:`uuid5_text` spells the same text straight from the
hash's hex digits: version 5 in the 13th digit, the RFC 4122 variant in the top bits of the 17th.
``tests/unit/test_ids.py`` checks it against ``uuid.uuid5``.
"""

from __future__ import annotations

import hashlib
from uuid import UUID

_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def uuid5_text(namespace: UUID, name: str) -> str:
    """``str(uuid.uuid5(namespace, name))``."""
    digits = hashlib.sha1(namespace.bytes + name.encode()).hexdigest()
    return f"{digits[:8]}-{digits[8:12]}-5{digits[13:16]}-{_VARIANT[digits[16]]}{digits[17:20]}-{digits[20:32]}"
