"""Need-to-know (003 §6.3 least privilege): the data subjects a person may see unmasked.

An agent's ``personal.unmask`` grant has scope ``own``: they see personal data only of the
customers of cases they own or are assigned — a contact whose first-contact agent they are, a
ticket they own (first-contact owner) or handle, a complaint they handle — as the ``case_people``
read model holds it, caught up with the log before it is read. A stated reason alone is not enough.
"""

from __future__ import annotations

from collections.abc import Callable

from projections.case_people import PERSON_TABLE
from projections.store import ViewDatabase


def subjects_of(db: ViewDatabase, person: str) -> frozenset[str]:
    """The data subjects of every case ``person`` owns or is assigned now."""
    with db.reading() as cur:
        rows = cur.execute(f"SELECT DISTINCT subject FROM {PERSON_TABLE.name} WHERE person = ?", (person,)).fetchall()
    return frozenset(str(subject) for (subject,) in rows)


def need_to_know(fresh: Callable[[], ViewDatabase], person: str) -> Callable[[str], bool]:
    """A test of data subjects for ``person``, read once on first use from the database ``fresh()``
    returns after catching the ``case_people`` read model up with the log (the API passes its live
    read models, the command line a runner of its own)."""
    known: list[frozenset[str]] = []

    def test(subject: str) -> bool:
        if not known:
            known.append(subjects_of(fresh(), person))
        return subject in known[0]

    return test
