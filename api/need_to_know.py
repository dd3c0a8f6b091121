"""The need-to-know test (003 §6.3) of one caller on the app's live read models: which customers'
personal data an agent may see unmasked (``services.need_to_know``; used by ``api.permissions``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from api.read_models import read_models
from services.need_to_know import need_to_know


def need_to_know_of(person: str) -> Callable[[str], bool]:
    """The test of ``person``, reading ``case_people`` caught up with the log, on first use."""
    def fresh() -> Any:
        live = read_models()
        live.fresh("case_people")
        return live.runner.db
    return need_to_know(fresh, person)
