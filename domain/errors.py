"""Domain errors. Each names the rule that forbids what was attempted, and where it comes from."""

from __future__ import annotations


class DomainError(Exception):
    """Base class: a command broke a rule of the domain."""

    #: A short, stable identifier of the rule (machine readable, used in API problem types).
    rule: str = "domain"

    def __init__(self, message: str, *, rule: str | None = None, clause: str | None = None):
        self.message = message
        if rule is not None:
            self.rule = rule
        self.clause = clause
        super().__init__(self.describe())

    def describe(self) -> str:
        return f"{self.message} ({self.clause})" if self.clause else self.message


class TransitionForbidden(DomainError):
    """The aggregate's lifecycle does not allow this command in its current state."""

    rule = "transition"


class InvalidValue(DomainError):
    """A value is outside the vocabulary or range the policy allows."""

    rule = "value"


class PolicyError(DomainError):
    """Policy data is missing, malformed, or not in force at the given time."""

    rule = "policy"


def require(condition: bool, message: str, *, rule: str, clause: str | None = None) -> None:
    """Raise :class:`TransitionForbidden` naming ``rule`` unless ``condition`` holds."""
    if not condition:
        raise TransitionForbidden(message, rule=rule, clause=clause)
