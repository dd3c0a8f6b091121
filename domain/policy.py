"""Policy data: every number from the source documents, versioned and cited.

A policy is one TOML file ``<name>@<version>.toml`` in ``domain/policies`` (format in
``SCHEMA.md``). Code names an entry by key (``policy.clock("ticket.first_response")``) and never
holds the number itself. Conflicting sources are separate named policies; ``index.toml`` names the
default. A case is governed by the policy in force when it was opened: its events record that
policy's reference (``name@version``) and later commands on the case use the same one.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from domain.calendar import BusinessCalendar, add_duration
from domain.errors import InvalidValue, PolicyError

POLICY_DIR = Path(__file__).with_name("policies")
_UNITS = {"minutes", "hours", "working_days"}

#: The attributes of a case that may select a clock's limit (``when`` keys), per clock subject, each
#: with the event field / read-model column it is read from. One table for every reader — the SLA
#: fold, the list and KPI read models — so a limit is selected the same way everywhere.
SELECTION_ATTRIBUTES: Mapping[str, Mapping[str, str]] = {
    "ticket": {"priority": "priority", "complexity": "complexity", "high_risk": "high_risk",
               "service_type": "service_type"},
    "complaint": {"level": "level", "complaint_type": "complaint_type", "service_type": "service_type"},
    "feedback": {"feedback_kind": "kind"},
    "interaction": {},
}


def selection_attributes(subject: str, facts: Any) -> dict[str, Any]:
    """The attributes of a case (``subject``: ticket, complaint, …) that select a clock's limit,
    read from ``facts``: a classification event, a read-model row, or any mapping or object with the
    fields of :data:`SELECTION_ATTRIBUTES`. A fact that is absent (events stored before the field
    existed) is None, which no ``when`` matches; ``high_risk`` is a boolean."""
    fields = SELECTION_ATTRIBUTES.get(subject, {})
    get = facts.get if isinstance(facts, Mapping) else (lambda name, default=None: getattr(facts, name, default))
    attrs = {attr: get(field, None) for attr, field in fields.items()}
    if "high_risk" in attrs:
        attrs["high_risk"] = bool(attrs["high_risk"])
    return attrs
_OPS = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b}


@dataclass(frozen=True)
class Limit:
    when: Mapping[str, Any]
    limit: float

    def matches(self, attrs: Mapping[str, Any]) -> bool:
        return all(attrs.get(k) == v for k, v in self.when.items())


@dataclass(frozen=True)
class Clock:
    """An SLA clock: starts at one milestone of a subject, must stop at another within a limit."""

    key: str
    subject: str
    start: str
    stop: str
    unit: str
    pausable: bool
    source: str
    limits: tuple[Limit, ...]
    note: str = ""

    def limit_for(self, attrs: Mapping[str, Any]) -> float:
        for candidate in self.limits:
            if candidate.matches(attrs):
                return candidate.limit
        raise PolicyError(f"clock {self.key} has no limit for {dict(attrs)}", rule="policy.clock", clause=self.source)

    def deadline(self, started: datetime, attrs: Mapping[str, Any], calendar: BusinessCalendar, tz: ZoneInfo) -> datetime:
        return add_duration(started, self.limit_for(attrs), self.unit, calendar, tz)


_DUE_ON = {"calendar_day", "next_working_day"}


@dataclass(frozen=True)
class RecordClass:
    """A class of records with its retention rule (trigger milestone + period + action at end).

    ``triggers`` are milestones ``<kind>.<event>`` (e.g. ``ticket.archived``) that start the period;
    ``due_on`` says whether a due date that is not a working day moves to the next working day.
    """

    key: str
    title: str
    triggers: tuple[str, ...]
    period_years: int
    minimum: bool
    action: str
    source: str
    note: str = ""
    due_on: str = "calendar_day"


@dataclass(frozen=True)
class Target:
    """A KPI target: ``value op target`` must hold."""

    key: str
    op: str
    value: float
    source: str
    note: str = ""

    def met(self, measured: float | None) -> bool | None:
        return None if measured is None else _OPS[self.op](measured, self.value)


@dataclass(frozen=True)
class Vocabulary:
    key: str
    values: tuple[Any, ...]
    source: str


@dataclass(frozen=True)
class Policy:
    name: str
    version: int
    effective_from: date
    title: str
    rationale: str
    timezone: str
    clocks: Mapping[str, Clock]
    record_classes: Mapping[str, RecordClass]
    targets: Mapping[str, Target]
    vocabularies: Mapping[str, Vocabulary]
    rules: Mapping[str, Mapping[str, Any]]
    extends: str = ""

    # Cached (policies are immutable): handlers ask for these on nearly every event. cached_property
    # stores in the instance's __dict__ directly, so it works on a frozen dataclass and is not a field.
    @functools.cached_property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @functools.cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def clock(self, key: str) -> Clock:
        return _lookup(self.clocks, key, "clock", self.ref)

    def target(self, key: str) -> Target:
        return _lookup(self.targets, key, "target", self.ref)

    def record_class(self, key: str) -> RecordClass:
        return _lookup(self.record_classes, key, "record class", self.ref)

    def rule(self, key: str) -> Mapping[str, Any]:
        return _lookup(self.rules, key, "rule", self.ref)

    def clause(self, rule_key: str) -> str:
        """The source clause of a rule, for error messages."""
        return str(self.rule(rule_key).get("source", ""))

    def vocabulary(self, key: str) -> Vocabulary:
        return _lookup(self.vocabularies, key, "vocabulary", self.ref)

    def check(self, vocabulary: str, value: Any, *, field_name: str | None = None) -> Any:
        """Return ``value`` if the policy's vocabulary allows it, else raise naming the allowed set."""
        vocab = self.vocabulary(vocabulary)
        if value not in vocab.values:
            allowed = ", ".join(str(v) for v in vocab.values)
            raise InvalidValue(
                f"{field_name or vocabulary} must be one of: {allowed}; got {value!r}",
                rule=f"vocabulary.{vocabulary}",
                clause=vocab.source,
            )
        return value


def _lookup(table: Mapping[str, Any], key: str, kind: str, ref: str) -> Any:
    try:
        return table[key]
    except KeyError:
        raise PolicyError(f"policy {ref} defines no {kind} {key!r}", rule="policy.missing") from None


@dataclass
class PolicyBook:
    """All policy versions, the default name, and lookups by reference or by time."""

    policies: dict[str, Policy] = field(default_factory=dict)
    default_name: str = ""

    @classmethod
    def load(cls, directory: Path | str = POLICY_DIR) -> PolicyBook:
        directory = Path(directory)
        index = tomllib.loads((directory / "index.toml").read_text(encoding="utf-8"))
        raw: dict[str, dict[str, Any]] = {}
        for path in sorted(directory.glob("*@*.toml")):
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            ref = f"{data['name']}@{data['version']}"
            if path.stem != ref:
                raise PolicyError(f"{path.name} declares {ref}; file name and content must agree", rule="policy.file")
            raw[ref] = data
        book = cls(default_name=index["default"])
        for ref in raw:
            book.policies[ref] = _build(_resolve(ref, raw, ()))
        if not book.versions(book.default_name):
            raise PolicyError(f"default policy {book.default_name!r} has no version", rule="policy.default")
        return book

    def versions(self, name: str) -> list[Policy]:
        """The versions of policy ``name``, oldest first. A reference ``name@version`` — the form
        ``caseledger policies`` lists and events record — names that one version only."""
        if "@" in name:
            return [self.policies[name]] if name in self.policies else []
        return sorted((p for p in self.policies.values() if p.name == name), key=lambda p: p.version)

    def get(self, ref: str) -> Policy:
        try:
            return self.policies[ref]
        except KeyError:
            raise PolicyError(f"unknown policy {ref!r}", rule="policy.unknown") from None

    def in_force(self, at: datetime, name: str | None = None) -> Policy:
        """The latest version of policy ``name`` (default: the book's default) effective at ``at``;
        ``name@version``: that version, once it is effective."""
        name = name or self.default_name
        candidates = [p for p in self.versions(name) if p.effective_from <= at.astimezone(p.tz).date()]
        if not candidates:
            raise PolicyError(f"no version of policy {name!r} is in force on {at.date().isoformat()}", rule="policy.not_in_force")
        return max(candidates, key=lambda p: (p.effective_from, p.version))


_TABLES = ("clocks", "record_classes", "targets", "vocabularies", "rules")


def _resolve(ref: str, raw: Mapping[str, dict[str, Any]], seen: tuple[str, ...]) -> dict[str, Any]:
    """Merge a policy over its base: each table entry of the child replaces the base's whole entry."""
    if ref in seen:
        raise PolicyError(f"policy inheritance loops: {' -> '.join(seen + (ref,))}", rule="policy.loop")
    if ref not in raw:
        raise PolicyError(f"unknown base policy {ref!r}", rule="policy.unknown")
    data = dict(raw[ref])
    base_ref = data.get("extends") or ""
    if not base_ref:
        return data
    merged = _resolve(base_ref, raw, seen + (ref,))
    for table in _TABLES:
        merged[table] = {**merged.get(table, {}), **data.get(table, {})}
    for entry in data.get("retire", ()):  # "<table>.<key>": an entry of the base this version drops
        table, _, key = str(entry).partition(".")
        if table not in _TABLES or key in data.get(table, {}):
            raise PolicyError(f"{ref}: cannot retire {entry!r} (not a table entry of the base)", rule="policy.file")
        merged[table].pop(key, None)  # absent: the base no longer has it, nothing to drop
    for key, value in data.items():
        if key not in _TABLES:
            merged[key] = value
    return merged


def _build(data: Mapping[str, Any]) -> Policy:
    ref = f"{data['name']}@{data['version']}"
    clocks = {}
    for key, c in data.get("clocks", {}).items():
        if c["unit"] not in _UNITS:
            raise PolicyError(f"{ref}: clock {key} has unknown unit {c['unit']!r}", rule="policy.file")
        limits = tuple(Limit(when=dict(lim.get("when", {})), limit=lim["limit"]) for lim in c["limits"])
        clocks[key] = Clock(key, c["subject"], c["start"], c["stop"], c["unit"], bool(c.get("pausable", False)),
                            c["source"], limits, c.get("note", ""))
    record_classes = {}
    for key, r in data.get("record_classes", {}).items():
        triggers = (r["trigger"],) if isinstance(r["trigger"], str) else tuple(r["trigger"])
        if r.get("due_on", "calendar_day") not in _DUE_ON:
            raise PolicyError(f"{ref}: record class {key} has unknown due_on {r['due_on']!r}", rule="policy.file")
        record_classes[key] = RecordClass(key, r["title"], triggers, int(r["period_years"]), bool(r.get("minimum", True)),
                                          r["action"], r["source"], r.get("note", ""), r.get("due_on", "calendar_day"))
    targets = {}
    for key, t in data.get("targets", {}).items():
        if t["op"] not in _OPS:
            raise PolicyError(f"{ref}: target {key} has unknown operator {t['op']!r}", rule="policy.file")
        targets[key] = Target(key, t["op"], float(t["value"]), t["source"], t.get("note", ""))
    vocabularies = {
        key: Vocabulary(key, tuple(v["values"]), v.get("source", "")) for key, v in data.get("vocabularies", {}).items()
    }
    effective = data["effective_from"]
    if not isinstance(effective, date):
        raise PolicyError(f"{ref}: effective_from must be a TOML date", rule="policy.file")
    return Policy(
        name=data["name"], version=int(data["version"]), effective_from=effective, title=data.get("title", ""),
        rationale=data.get("rationale", ""), timezone=data.get("timezone", "Asia/Shanghai"), clocks=clocks,
        record_classes=record_classes, targets=targets, vocabularies=vocabularies,
        rules={k: dict(v) for k, v in data.get("rules", {}).items()}, extends=data.get("extends", ""),
    )
