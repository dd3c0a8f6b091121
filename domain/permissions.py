"""Who may do what: the roles, the permission matrix and the data grades of ``permissions.toml``.

This is the one place where a caller's role (and, for scoped grants, the record itself) decides
whether something is allowed. The API asks it on every request before any handler runs; the
file's header comment defines actions and scopes, and README.md ("Access control") shows the
matrix.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Mapping, Protocol

PERMISSIONS_FILE = Path(__file__).with_name("permissions.toml")
SCOPES = ("own", "team", "all")
#: The permission that lets a caller read personal data unmasked (with a stated reason).
UNMASK = "personal.unmask"

#: Attributes naming the people a record belongs to, per kind (see the domain aggregates):
#: a ticket's first-contact owner (首问负责人) and current handler, a complaint's handler, an
#: interaction's first-contact agent.
OWNER_ATTRIBUTES: Mapping[str, tuple[str, ...]] = {
    "ticket": ("first_contact_owner", "handler"),
    "complaint": ("handler",),
    "interaction": ("first_contact_agent",),
}


class CallerLike(Protocol):
    actor_id: str
    role: str
    team: str | None


class AccessPolicyError(ValueError):
    """The permission file is malformed."""


@dataclass(frozen=True)
class Role:
    name: str
    title: str
    grants: Mapping[str, str]

    def scope(self, action: str) -> str | None:
        """The scope granted for ``action``: an exact entry, else the widest matching wildcard."""
        if action in self.grants:
            return self.grants[action]
        matches = [scope for pattern, scope in self.grants.items()
                   if "*" in pattern and fnmatch.fnmatchcase(action, pattern)]
        return max(matches, key=SCOPES.index) if matches else None


@dataclass(frozen=True)
class AccessPolicy:
    name: str
    version: int
    roles: Mapping[str, Role]
    grades: Mapping[str, str]

    @classmethod
    def load(cls, path: Path = PERMISSIONS_FILE, grade_vocabulary: Collection[str] = ("core", "important", "general"),
             ) -> AccessPolicy:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        roles = {}
        for name, entry in data.get("roles", {}).items():
            grants = dict(entry.get("grants", {}))
            bad = {action: scope for action, scope in grants.items() if scope not in SCOPES}
            if bad:
                raise AccessPolicyError(f"{path}: role {name} has unknown scopes {bad}; scopes are {SCOPES}")
            roles[name] = Role(name, entry.get("title", name), grants)
        grades: dict[str, str] = {}
        for grade, names in data.get("data_grades", {}).items():
            if grade not in grade_vocabulary:
                raise AccessPolicyError(f"{path}: unknown data grade {grade!r}; grades are {sorted(grade_vocabulary)}")
            for field in names:
                if field in grades:
                    raise AccessPolicyError(f"{path}: field {field!r} has two grades")
                grades[field] = grade
        return cls(data["name"], int(data["version"]), roles, grades)

    @property
    def ref(self) -> str:
        """Recorded as the ``policy`` of token and access events, like a case's service policy."""
        return f"{self.name}@{self.version}"

    # -- permissions ----------------------------------------------------------------------------
    def scope(self, role: str, action: str) -> str | None:
        """The scope ``role`` holds for ``action``, or None when it may not do it at all."""
        found = self.roles.get(role)
        return found.scope(action) if found else None

    def in_scope(self, caller: CallerLike, scope: str, kind: str, record: Any) -> bool:
        """May a caller holding ``scope`` act on this record of ``kind``?"""
        if scope == "all":
            return True
        owners = [getattr(record, attribute, None) for attribute in OWNER_ATTRIBUTES.get(kind, ())]
        if caller.actor_id in owners:
            return True
        if kind == "interaction" and owners == [None]:
            return True  # not registered yet: in the shared intake queue, any agent may take it
        if scope == "team":
            team = getattr(record, "team", None)
            return team is None or team == caller.team
        return False

    def list_in_scope(self, caller: CallerLike, scope: str, filters: Mapping[str, list[str]], *,
                      has_team: bool) -> bool:
        """May a caller holding ``scope`` list records with these filters? Scoped lists must be
        filtered to the caller (owner or handler) or, for team scope, to the caller's team."""
        if scope == "all":
            return True
        mine = [caller.actor_id]
        if filters.get("owner") == mine or filters.get("handler") == mine:
            return True
        if scope == "team":
            return not has_team or (caller.team is not None and filters.get("team") == [caller.team])
        return False

    # -- data grades ----------------------------------------------------------------------------
    def grade(self, field: str) -> str:
        try:
            return self.grades[field]
        except KeyError:
            raise AccessPolicyError(f"response field {field!r} has no data grade in {PERMISSIONS_FILE.name}") from None

    def actions(self) -> set[str]:
        """Every action some role is granted (wildcards as written)."""
        return {action for role in self.roles.values() for action in role.grants}
