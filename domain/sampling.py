"""Samples of cases for inspection (抽查, 000 §6.2; 004 §6.1 专项检查), drawn so anyone can draw them again.

:func:`draw_cases` is the whole method: the population (case id and its stratum) in canonical order
— sorted by case id — and ``random.Random(seed)``; a random sample takes ``size`` cases of the
whole population, a stratified one ``size`` cases of each stratum (strata in sorted order, one
generator for all). The :class:`Sample` records the criteria, method, seed, the population's size
and digest and the cases drawn, so a second draw over the same population gives the same cases and
the digest shows whether the population is the same. Each sampled case then gets one inspection
result (an event) from an inspector.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any, Mapping, Sequence
from uuid import UUID

from eventsourcing.domain import event

from domain.case import Case
from domain.context import Context
from domain.errors import InvalidValue, require
from domain.policy import Policy

#: The policy entry: sampling dimensions, the largest sample, the clause.
SAMPLING = "sampling"


def canonical(population: Sequence[tuple[str, Any]]) -> list[tuple[str, str]]:
    """The population as (case id, stratum as text), sorted by case id, each case once."""
    seen = {str(case_id): "" if stratum is None else str(stratum) for case_id, stratum in population}
    return sorted(seen.items())


def population_digest(population: Sequence[tuple[str, Any]]) -> str:
    """SHA-256 of the canonical population (one ``case id<TAB>stratum`` line each)."""
    return hashlib.sha256("\n".join(f"{c}\t{s}" for c, s in canonical(population)).encode("utf-8")).hexdigest()


def draw_cases(population: Sequence[tuple[str, Any]], size: int, seed: int, stratified: bool) -> list[str]:
    """The case ids drawn, sorted: ``size`` of the whole population, or ``size`` of each stratum."""
    ordered = canonical(population)
    rng = random.Random(seed)
    if not stratified:
        ids = [case_id for case_id, _ in ordered]
        return sorted(rng.sample(ids, min(size, len(ids))))
    strata: dict[str, list[str]] = {}
    for case_id, stratum in ordered:
        strata.setdefault(stratum, []).append(case_id)
    picked: list[str] = []
    for stratum in sorted(strata):
        picked += rng.sample(strata[stratum], min(size, len(strata[stratum])))
    return sorted(picked)


class Sample(Case):
    """A drawn sample and the inspection result of each of its cases."""

    @event("Drawn")
    def __init__(self, id: UUID, criteria: dict[str, Any], method: str, stratify_by: str | None, size: int, seed: int,
                 population_size: int, population_digest: str, case_ids: list[str], policy_ref: str,
                 meta: dict[str, Any]):
        self.criteria, self.method, self.stratify_by = criteria, method, stratify_by
        self.size, self.seed = size, seed
        self.population_size, self.population_digest = population_size, population_digest
        self.case_ids = list(case_ids)
        self.policy_ref = policy_ref
        self.status = "drawn"
        self.inspections: dict[str, dict[str, Any]] = {}

    @classmethod
    def draw(cls, *, id: UUID, population: Sequence[tuple[str, Any]], criteria: Mapping[str, Any], size: int,
             seed: int, stratify_by: str | None, policy: Policy, ctx: Context) -> Sample:
        entry = policy.rule(SAMPLING)
        clause = str(entry.get("source", ""))
        if stratify_by is not None and stratify_by not in entry["dimensions"]:
            raise InvalidValue(f"stratify_by must be one of: {', '.join(entry['dimensions'])}; got {stratify_by!r}",
                               rule="sample.dimension", clause=clause)
        if not 1 <= size <= int(entry["max_size"]):
            raise InvalidValue(f"a sample has 1 to {entry['max_size']} cases (per stratum)", rule="sample.size",
                               clause=clause)
        require(bool(population), "no case matches the criteria: there is nothing to sample", rule="sample.empty",
                clause=clause)
        cases = draw_cases(population, size, seed, stratify_by is not None)
        return cls(id=id, criteria=dict(criteria), method="stratified" if stratify_by else "random",
                   stratify_by=stratify_by, size=size, seed=seed, population_size=len(canonical(population)),
                   population_digest=population_digest(population), case_ids=cases, policy_ref=policy.ref,
                   meta=ctx.meta(policy.ref))

    def inspect(self, *, policy: Policy, ctx: Context, case_id: str, result: str, note: str | None = None,
                finding_id: str | None = None) -> None:
        """An inspector's result for one sampled case (once per case), optionally naming a finding it led to."""
        self._governed_by(policy)
        clause = policy.clause(SAMPLING)
        case_id = str(case_id)
        require(case_id in self.case_ids, f"case {case_id} is not in this sample", rule="sample.case_not_sampled",
                clause=clause)
        require(case_id not in self.inspections, f"case {case_id} was inspected already", rule="sample.inspected_once",
                clause=clause)
        policy.check("inspection_result", result, field_name="result")
        self._inspected(self._meta(ctx), case_id=case_id, result=result, note=note,
                        finding_id=str(finding_id) if finding_id else None)

    @event("Inspected")
    def _inspected(self, meta: dict[str, Any], case_id: str, result: str, note: str | None,
                   finding_id: str | None) -> None:
        self.inspections[case_id] = {"result": result, "note": note, "finding_id": finding_id,
                                     "inspector": meta.get("performed_by") or meta["actor_id"],
                                     "inspected_at": meta["occurred_at"]}
        if len(self.inspections) == len(self.case_ids):
            self.status = "inspected"
