"""Reading a historical import file (``services.history_import``): one NDJSON line → one :class:`Record`.

This module checks what a line says on its own — valid UTF-8 and JSON, a known kind, known fields
of the right types, times with a time zone, not in the future and in order within the case. What
needs the ledger (references, vocabularies, lifecycle rules) is checked by building the case.

The fields of a step are the parameters of the domain command it names, read from the command's
signature: a new parameter in the domain is importable at once, and a step can never pass anything
the live command would not take.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain import text
from ledger.application import ACTIONS, KINDS


class LineRefused(Exception):
    """A line that cannot be imported: the message names the field or step, ``rule`` the rule."""

    def __init__(self, message: str, rule: str):
        super().__init__(message)
        self.rule = rule


#: Fields of every case line besides its kind's own (a survey has no ``ref`` and no ``steps``).
COMMON = ("kind", "ref", "at", "actor", "reason", "steps")
#: Fields of every step besides the command's parameters.
STEP_COMMON = ("action", "at", "actor", "reason")
#: The fields that create each kind of case, typed like the domain's signatures. ``ref`` names a
#: case of this or an earlier import; ``text`` is free text (may span lines), ``str`` a name.
CREATE: dict[str, dict[str, str]] = {
    "customer": {"customer_kind": "str", "tier": "str", "contact": "dict[str, str | None] | None",
                 "consents": "dict[str, bool] | None"},
    "interaction": {"channel": "str", "direction": "str", "content": "text | None", "customer": "ref | None"},
    "ticket": {"channel": "str", "customer": "ref", "actor": "str", "summary": "text | None"},
    "complaint": {"channel": "str", "customer": "ref", "ticket": "ref | None", "description": "text | None"},
    "feedback": {"feedback_kind": "str", "channel": "str", "customer": "ref", "ticket": "ref | None",
                 "content": "text | None"},
    "survey": {"ticket": "ref", "csat": "int | None", "nps": "int | None", "comment": "text | None"},
}
KINDS_IN_ORDER = tuple(CREATE)
#: Command parameters holding free text (the rest of the ``str`` ones are names: vocabulary, people).
FREE_TEXT = frozenset({"summary", "content", "description", "message", "resolution", "note", "comment", "details",
                       "analysis", "reason"})
#: Longest values: names as in the API, references as an interaction's ``external_ref``.
MAX_NAME, MAX_REF, MAX_TEXT = 64, 200, 10_000


@dataclass(frozen=True)
class Step:
    number: int  # 1-based, as error messages name it
    action: str
    at: datetime
    actor: str | None
    reason: str | None
    args: dict[str, Any]


@dataclass(frozen=True)
class Record:
    line: int
    kind: str
    ref: str | None  # None for a survey: its identity is its ticket
    at: datetime
    actor: str | None
    reason: str | None
    fields: dict[str, Any]
    steps: tuple[Step, ...] = field(default=())


def parse_line(number: int, raw: bytes, now: datetime) -> Record:
    try:
        value = text.loads(raw)
    except text.MalformedInput as e:
        rule = "import.utf8" if "UTF-8" in str(e) else "import.json"
        raise LineRefused(f"not {'UTF-8' if rule == 'import.utf8' else 'valid JSON'}: {e}", rule) from None
    except text.RefusedValues as e:
        raise LineRefused(str(e), "import.value") from None
    if not isinstance(value, dict):
        raise LineRefused("a line is one JSON object", "import.json")
    kind = value.get("kind")
    if kind not in CREATE:
        raise LineRefused(f"kind must be one of {', '.join(KINDS_IN_ORDER)}, not {_shown(kind)}", "import.kind")
    allowed = {*COMMON, *CREATE[kind]} - ({"ref", "steps"} if kind == "survey" else set())
    _no_unknown(value, allowed, f"a {kind} line")
    ref = None if kind == "survey" else _value(value, "ref", "ref")
    at = _time(value, "at", now)
    fields = {name: _value(value, name, spec) for name, spec in CREATE[kind].items() if name != "actor"}
    actor = _value(value, "actor", CREATE[kind].get("actor", "str | None"))
    reason = _value(value, "reason", "text | None")
    steps = _steps(kind, value.get("steps", []), at, now)
    return Record(number, kind, ref, at, actor, reason, fields, steps)


def _steps(kind: str, raw: Any, start: datetime, now: datetime) -> tuple[Step, ...]:
    if not isinstance(raw, list):
        raise LineRefused("steps must be a list of objects", "import.type")
    steps, previous = [], start
    for number, step in enumerate(raw, start=1):
        where = f"step {number}"
        if not isinstance(step, dict):
            raise LineRefused(f"{where}: a step is a JSON object", "import.type")
        action = step.get("action")
        if action not in ACTIONS[kind]:
            raise LineRefused(f"{where}: a {kind} has no action {_shown(action)} (actions: "
                              f"{', '.join(sorted(ACTIONS[kind])) or 'none'})", "import.action")
        where = f"step {number} ({action})"
        parameters = command_parameters(kind, action)
        try:
            _no_unknown(step, {*STEP_COMMON, *parameters}, "this step")
            at = _time(step, "at", now)
            if at < previous:
                raise LineRefused(f"at {at.isoformat()} is earlier than the step before it "
                                  f"({previous.isoformat()}); a case's steps are in time order", "import.time_order")
            args = {name: _value(step, name, spec) for name, spec in parameters.items()}
            steps.append(Step(number, action, at, _value(step, "actor", "str | None"),
                              _value(step, "reason", "text | None"), args))
        except LineRefused as e:
            raise LineRefused(f"{where}: {e}", e.rule) from None
        previous = at
    return tuple(steps)


def command_parameters(kind: str, action: str) -> dict[str, str]:
    """The domain command's own parameters with their annotations (``policy`` and ``ctx`` are ours).
    Free-text parameters are typed ``text``; one without a default is required unless it may be None."""
    signature = inspect.signature(getattr(KINDS[kind], action))
    out = {}
    for name, parameter in signature.parameters.items():
        if name in ("self", "policy", "ctx"):
            continue
        spec = str(parameter.annotation)
        if name in FREE_TEXT:
            spec = spec.replace("str", "text", 1)
        if parameter.default is not inspect.Parameter.empty and "None" not in _union(spec):
            spec += " | None"  # has a default: may be left out (the domain's default then applies)
        out[name] = spec
    return out


# -- values ----------------------------------------------------------------------------------
def _union(spec: str) -> list[str]:
    """``"dict[str, str | None] | None"`` → ``["dict[str, str | None]", "None"]`` (top level only)."""
    parts, depth, current = [], 0, ""
    for char in spec:
        depth += char == "["
        depth -= char == "]"
        if char == "|" and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return parts


def _value(container: dict[str, Any], name: str, spec: str) -> Any:
    options = _union(spec)
    if container.get(name) is None:
        if "None" in options:
            return None
        raise LineRefused(f"{name} is required", "import.field")
    value = container[name]
    for option in options:
        if option != "None" and (problem := _problem(value, option)) is None:
            return value
    raise LineRefused(f"{name}: {problem}", "import.type")


def _problem(value: Any, spec: str) -> str | None:
    """Why ``value`` is not of type ``spec`` (``str``, ``text``, ``ref``, ``int``, ``bool``, ``dict[str, T]``)."""
    if spec in ("str", "text", "ref"):
        if not isinstance(value, str) or not value.strip():
            return "must be non-empty text"
        longest = {"str": MAX_NAME, "ref": MAX_REF, "text": MAX_TEXT}[spec]
        if len(value) > longest:
            return f"must be at most {longest} characters"
        return text.text_problem(value, multiline=spec == "text")
    if spec == "bool":
        return None if isinstance(value, bool) else "must be true or false"
    if spec == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be a whole number"
        return text.integer_problem(value)
    if spec.startswith("dict[str, ") and spec.endswith("]"):
        if not isinstance(value, dict):
            return "must be a JSON object"
        item = spec[len("dict[str, "):-1]
        for key, member in value.items():
            if (problem := _problem(key, "str")) is not None:
                return f"key {text.printable(key)!r} {problem}"
            options = [o for o in _union(item) if o != "None"]
            if not (member is None and "None" in _union(item)) and all(_problem(member, o) for o in options):
                return f"{text.printable(key)} {_problem(member, options[0])}"
        return None
    raise LineRefused(f"cannot import a value of type {spec}", "import.type")  # a new kind of parameter


def _time(container: dict[str, Any], name: str, now: datetime) -> datetime:
    raw = container.get(name)
    if not isinstance(raw, str):
        raise LineRefused(f"{name} is required: the original business time, ISO 8601 with a time zone",
                          "import.time")
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        raise LineRefused(f"{name} {_shown(raw)} is not an ISO 8601 time", "import.time") from None
    if at.tzinfo is None or at.utcoffset() is None:
        raise LineRefused(f"{name} {_shown(raw)} has no time zone", "import.time")
    if (problem := text.time_problem(at)) is not None:
        raise LineRefused(f"{name} {problem}", "import.time")
    if at > now:
        raise LineRefused(f"{name} {at.isoformat()} is in the future (now is {now.isoformat(timespec='seconds')}); "
                          "history happened already", "import.future_time")
    return at


def _no_unknown(value: dict[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise LineRefused(f"{what} has no field {', '.join(_shown(u) for u in unknown)} "
                          f"(fields: {', '.join(sorted(allowed))})", "import.field")


def _shown(value: Any) -> str:
    return repr(text.printable(value)) if isinstance(value, str) else repr(value)
