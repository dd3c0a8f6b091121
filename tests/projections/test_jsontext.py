"""projections.jsontext writes exactly what json.dumps writes, with the same options."""

from __future__ import annotations

import json
import random

import pytest

from projections.jsontext import json_writer

OPTIONS = [dict(sort_keys=True, ensure_ascii=False, separators=(",", ":")), dict(sort_keys=True),
           dict(separators=(",", ":")), dict()]
TEXTS = ["a", "é", "中文", "\x00", "\n", '"', "\\", "\u2028", "\x7f", "\ud800", "", "key", "Z" * 40,
         "\x1f", "\t", "\x08", "\x0c", "\r", "\x85", "\ufeff", "😀", "\udfff", "/"]


def _value(rng: random.Random, depth: int = 0) -> object:
    pick = rng.random()
    if pick < 0.3:
        return "".join(rng.choice(TEXTS) for _ in range(rng.randint(0, 4)))
    if pick < 0.4:
        return rng.choice([None, True, False])
    if pick < 0.55:
        return rng.randint(-10**20, 10**20)
    if pick < 0.6:
        return rng.random() * 10 ** rng.randint(-10, 20)
    if pick < 0.7 and depth < 2:
        return {_key(rng): _value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    if pick < 0.75 and depth < 2:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return rng.randint(0, 100)


def _key(rng: random.Random) -> object:
    return "".join(rng.choice(TEXTS) for _ in range(rng.randint(0, 3))) if rng.random() < 0.9 else \
        rng.choice([1, 2.5, True, None])


def _outcome(write, value):
    try:
        return write(value)
    except (TypeError, ValueError) as e:
        return type(e)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: json.dumps(o))
def test_the_text_is_json_dumps_text(options):
    rng = random.Random(4)
    write = json_writer(**options)
    for _ in range(20000):
        value = {_key(rng): _value(rng) for _ in range(rng.randint(0, 6))} if rng.random() < 0.9 else _value(rng)
        assert _outcome(write, value) == _outcome(lambda v: json.dumps(v, **options), value), value
