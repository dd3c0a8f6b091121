"""Need-to-know (003 §6.3 least privilege): which people own or are assigned a case of which subject.

One row per (data subject, person, case, relation): the person who registered a customer (the
customer record is theirs), a contact's first-contact agent, a ticket's first-contact owner and its
current handler, a complaint's current handler. The subject is the
customer (a contact without a customer: the contact itself, whose personal data is its own). A
handover replaces the handler's row; archiving a case ends its rows — an archived record is final
and nobody works on it any more. ``services.need_to_know`` reads it to decide whether an agent may
see a subject's personal data unmasked. Ids only, no personal data.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii
from typing import Any

from domain.context import person
from projections.jsontext import json_writer
from projections.rowcache import RowCache
from projections.runtime import Projection
from projections.store import Codec, Table

PERSON_TABLE = Table("rm_case_person", columns=(("subject", "TEXT"), ("person", "TEXT"), ("case_id", "TEXT"),
                                                ("relation", "TEXT")),
                     key=("subject", "person", "case_id", "relation"), indexes=(("person", "subject"),))
_json_text = json_writer(sort_keys=True)


def _people_text(people: Any) -> str:
    """``json.dumps(people, sort_keys=True)``: for the usual list of [person, relation] text pairs
    written here directly (with json's own string escaping), anything else by json itself."""
    if type(people) is list and all(type(pair) is list and len(pair) == 2 and type(pair[0]) is str
                                    and type(pair[1]) is str for pair in people):
        return "[" + ", ".join(f"[{encode_basestring_ascii(someone)}, {encode_basestring_ascii(relation)}]"
                               for someone, relation in people) + "]"
    return _json_text(people)


_JSON = Codec(encode=_people_text, decode=json.loads)
#: Per case: its subject and its current (person, relation) pairs, to replace or end them.
CASE_TABLE = Table("rm_case_people", columns=(("case_id", "TEXT"), ("subject", "TEXT"), ("people", "TEXT")),
                   key=("case_id",), codecs=(("people", _JSON),))


class CasePeople(Projection):
    name = "case_people"
    rebuild_weight = 3
    tables = (PERSON_TABLE, CASE_TABLE)

    def _open(self, rows: RowCache, e: Any, subject: str) -> dict[str, Any]:
        case = {"case_id": str(e.originator_id), "subject": subject, "people": []}
        rows.put(CASE_TABLE.name, case)
        return case

    def _case(self, rows: RowCache, e: Any) -> dict[str, Any]:
        case = rows.get(CASE_TABLE.name, str(e.originator_id))
        if case is None:
            raise LookupError(f"rm_case_people has no row for {e.originator_id}; its creation event was not seen")
        return case

    # The case's row is changed in place and put again (a row got from the cache is the handler's to change).
    def _add(self, rows: RowCache, case: dict[str, Any], person: str | None, relation: str) -> None:
        pair = [person, relation]
        people = case["people"]
        if not person or pair in people:
            return
        people.append(pair)
        people.sort()
        rows.put(CASE_TABLE.name, case)
        rows.put(PERSON_TABLE.name, {"subject": case["subject"], "person": person, "case_id": case["case_id"],
                                     "relation": relation})

    def _remove(self, rows: RowCache, case: dict[str, Any], person: str | None, relation: str) -> dict[str, Any]:
        pair = [person, relation]
        people = case["people"]
        if not person or pair not in people:
            return case
        people[:] = [p for p in people if p != pair]
        rows.put(CASE_TABLE.name, case)
        rows.delete(PERSON_TABLE.name, case["subject"], person, case["case_id"], relation)
        return case

    def _end(self, rows: RowCache, e: Any) -> None:
        case = self._case(rows, e)
        for someone, relation in list(case["people"]):
            case = self._remove(rows, case, someone, relation)

    def on_Customer_Registered(self, e: Any, position: int, rows: RowCache) -> None:
        """Whoever registered the customer owns that record (registration happens within a contact
        they serve); a customer's later cases add their own people."""
        customer = str(e.originator_id)
        self._add(rows, self._open(rows, e, customer), person(e.meta), "registered")

    def on_Interaction_Received(self, e: Any, position: int, rows: RowCache) -> None:
        self._open(rows, e, str(e.customer_id or e.originator_id))

    def on_Interaction_Registered(self, e: Any, position: int, rows: RowCache) -> None:
        self._add(rows, self._case(rows, e), e.agent_id, "first_contact")

    def on_Ticket_Received(self, e: Any, position: int, rows: RowCache) -> None:
        self._add(rows, self._open(rows, e, str(e.customer_id)), e.first_contact_owner, "owner")

    def on_Ticket_Assigned(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._remove(rows, self._case(rows, e), e.previous_handler, "handler")
        self._add(rows, case, e.handler, "handler")

    def on_Ticket_Archived(self, e: Any, position: int, rows: RowCache) -> None:
        self._end(rows, e)

    def on_Complaint_Accepted(self, e: Any, position: int, rows: RowCache) -> None:
        self._add(rows, self._open(rows, e, str(e.customer_id)), e.handler, "handler")

    def on_Complaint_HandlerReassigned(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._remove(rows, self._case(rows, e), e.previous_handler, "handler")
        self._add(rows, case, e.handler, "handler")

    def on_Complaint_Archived(self, e: Any, position: int, rows: RowCache) -> None:
        self._end(rows, e)
