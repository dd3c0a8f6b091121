"""The registry of dashboard KPIs: each one a function of one group's summed counters.

A KPI returns ``(value, numerator, denominator)`` or ``None`` when the denominator is zero (no data
is not 0 %). Its docstring is its definition, shown with its value; ``target`` names the policy
target (``targets.<key>``) it is judged against, if any.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

Counters = Mapping[str, int]
Result = tuple[float, int, int] | None


@dataclass(frozen=True)
class Kpi:
    key: str
    unit: str
    target: str | None
    compute: Callable[[Counters, Mapping[str, int]], Result]

    @property
    def definition(self) -> str:
        return " ".join((self.compute.__doc__ or "").split())


KPIS: dict[str, Kpi] = {}


def kpi(key: str, *, unit: str = "ratio", target: str | None = None) -> Callable[[Callable[..., Result]], Callable[..., Result]]:
    def register(fn: Callable[..., Result]) -> Callable[..., Result]:
        KPIS[key] = Kpi(key, unit, target, fn)
        return fn
    return register


def ratio(numerator: int, denominator: int, scale: float = 1.0) -> Result:
    return None if not denominator else (numerator * scale / denominator, numerator, denominator)
