"""Masking of personal data, and what one read discloses: the same rules for every entry point.

Personal fields are masked by default — name ``张三丰`` → ``张**``; phone ``13812345678`` →
``138****5678``; email ``alice@x.com`` → ``a***@x.com``; address → its first few characters and
``****``; anything else (free text a customer wrote) → ``****``; ``None`` (destroyed by
crypto-shredding) stays ``None`` — unless the reader holds ``personal.unmask`` and states a reason.
Then the values are shown and a :class:`Disclosure` remembers which subject's fields were shown,
for the security audit log (:mod:`services.access_log`). A reason alone is not enough for a reader
limited to their own cases (agents): only the customers of cases they own or handle are shown
(``need_to_know``). The API (``api.masking``) and the command line use this one module.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

REDACTED = "****"


def mask_name(value: str) -> str:
    return value[:1] + "*" * max(len(value) - 1, 1) if len(value) > 1 else "*"


def mask_phone(value: str) -> str:
    digits = [i for i, ch in enumerate(value) if ch.isdigit()]
    keep_head, keep_tail = (3, 4) if len(digits) >= 8 else (0, min(2, len(digits) // 2))
    hidden = set(digits[keep_head:len(digits) - keep_tail])
    masked = "".join("*" if i in hidden else ch for i, ch in enumerate(value))
    return re.sub(r"\*+", "****", masked)


def mask_email(value: str) -> str:
    local, at, domain = value.rpartition("@")
    return f"{local[:1]}***@{domain}" if at and local else REDACTED


def mask_address(value: str) -> str:
    return value[: max(len(value) // 3, 1)] + REDACTED if len(value) > 3 else REDACTED


MASKERS: dict[str, Callable[[str], str]] = {"name": mask_name, "phone": mask_phone, "email": mask_email,
                                            "address": mask_address}


def mask(field: str, value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        return REDACTED
    return MASKERS.get(field, lambda _: REDACTED)(value)


class Disclosure:
    """One request's decision: mask, or disclose (with ``reason``) and remember what was shown.

    ``need_to_know`` (003 §6.3 least privilege): for a reader whose unmasking is limited to their
    own cases (scope ``own`` of ``personal.unmask``, agents), a test of a data subject — does the
    reader own or handle a case of theirs (:mod:`services.need_to_know`)? A subject that fails it
    stays masked whatever the reason, and is remembered in ``withheld``."""

    def __init__(self, reason: str | None = None, need_to_know: Callable[[str], bool] | None = None):
        self.reason = reason
        self.need_to_know = need_to_know
        self.disclosed: dict[str, set[str]] = {}
        self.withheld: set[str] = set()

    def fields(self, subject: Any, values: dict[str, Any]) -> dict[str, Any]:
        if self.reason is not None and self.need_to_know is not None and not self.need_to_know(str(subject)):
            self.withheld.add(str(subject))
            return {name: mask(name, value) for name, value in values.items()}
        if self.reason is None:
            return {name: mask(name, value) for name, value in values.items()}
        shown = {name for name, value in values.items() if value is not None}
        if shown:
            self.disclosed.setdefault(str(subject), set()).update(shown)
        return dict(values)

    def part(self, personal: dict[str, Any] | None) -> dict[str, Any] | None:
        """An event's personal part (``{"subject", "fields"}``), masked or disclosed."""
        if not personal:
            return personal
        part = dict(personal)
        if "fields" in part:
            part["fields"] = self.fields(part.get("subject"), dict(part.get("fields") or {}))
        return part
