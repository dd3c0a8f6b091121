"""Fail closed: an optional blueprint registers only once the access policy knows its endpoints."""

from __future__ import annotations

from typing import Any


def policy_knows(access: Any, actions: dict[str, str], data_grades: dict[str, list[str]]) -> bool:
    """Does the access policy grant each of ``actions``' actions to someone (a grant ``x.*`` covers ``x.y``)
    and grade every field of ``data_grades``?"""
    granted = access.actions()
    graded = all(field in access.grades for names in data_grades.values() for field in names)
    return graded and all(any(g == a or (g.endswith("*") and a.startswith(g[:-1])) for g in granted)
                          for a in set(actions.values()))
