"""Bearer tokens for API callers, kept as SHA-256 hashes in a TOML file (never in plain text).

Each token maps to one actor, their role and team; the actor on every event comes from here,
never from a request body. (Expiry, revocation and the full permission matrix come with the
access-control work.)
"""

from __future__ import annotations

import hashlib
import re
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROLES = ("agent", "team_lead", "complaint_manager", "records_manager", "compliance_officer", "auditor",
         "administrator", "service")
#: Roles that may only read (auditors replay history; they change nothing).
READ_ONLY_ROLES = frozenset({"auditor"})
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


@dataclass(frozen=True)
class Caller:
    actor_id: str
    role: str
    team: str | None = None

    @property
    def read_only(self) -> bool:
        return self.role in READ_ONLY_ROLES


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenBook:
    def __init__(self, callers: dict[str, Caller] | None = None):
        self._by_hash = dict(callers or {})

    @classmethod
    def load(cls, path: Path) -> TokenBook:
        if not path.exists():
            return cls()
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        book = cls()
        for entry in data.get("tokens", []):
            if entry["role"] not in ROLES:
                raise ValueError(f"{path}: unknown role {entry['role']!r}")
            book._by_hash[entry["sha256"]] = Caller(entry["actor"], entry["role"], entry.get("team"))
        return book

    def caller(self, token: str) -> Caller | None:
        return self._by_hash.get(token_hash(token))

    def issue(self, caller: Caller) -> str:
        """Create a new token for ``caller``; only its hash is kept."""
        if caller.role not in ROLES:
            raise ValueError(f"unknown role {caller.role!r}")
        for name in (caller.actor_id, caller.team or "team"):
            if not _NAME.match(name):
                raise ValueError(f"{name!r}: use letters, digits and . _ @ - (at most 64)")
        token = "cl_" + secrets.token_urlsafe(24)
        self._by_hash[token_hash(token)] = caller
        return token

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = ["# caseledger API tokens: SHA-256 of each bearer token -> actor, role, team\n"]
        for digest, c in sorted(self._by_hash.items(), key=lambda item: item[1].actor_id):
            lines.append(f'\n[[tokens]]\nsha256 = "{digest}"\nactor = "{c.actor_id}"\nrole = "{c.role}"\n')
            if c.team:
                lines.append(f'team = "{c.team}"\n')
        path.write_text("".join(lines), encoding="utf-8")
        path.chmod(0o600)
