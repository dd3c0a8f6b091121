"""Name-based ids as text are exactly uuid.uuid5's, for the namespaces the domain uses."""

from __future__ import annotations

import random
import uuid

import pytest

from domain.findings import FINDING_NAMESPACE
from domain.ids import uuid5_text
from domain.sla import SLA_NAMESPACE, SLABreach, breach_key


@pytest.mark.parametrize("namespace", [FINDING_NAMESPACE, SLA_NAMESPACE, uuid.NAMESPACE_DNS])
def test_uuid5_text_is_uuid5(namespace):
    rng = random.Random(5)
    alphabet = "abc-:0123456789客户é\u2028 "
    for _ in range(2000):
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert uuid5_text(namespace, name) == str(uuid.uuid5(namespace, name))


def test_breach_keys_are_the_breach_ids():
    assert breach_key("t-1", "ticket.resolution", 2) == str(SLABreach.id_for("t-1", "ticket.resolution", 2))
    assert SLABreach.id_for("t-1", "ticket.resolution", 2) == uuid.uuid5(SLA_NAMESPACE, "sla-breach:t-1:ticket.resolution:2")
