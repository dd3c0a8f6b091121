"""api/json_provider.py: orjson under Flask's JSON provider gives the same JSON values as Flask's own
provider (keys sorted, dates as HTTP dates, Decimal/UUID as strings), falls back to it for what orjson
refuses, and sends non-ASCII text as UTF-8."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from flask import Flask
from flask.json.provider import DefaultJSONProvider

from api.json_provider import OrjsonProvider


@dataclasses.dataclass
class Point:
    x: int
    label: str


VALUES = [
    {"b": 1, "a": [1, 2.5, None, True], "c": {"z": "x", "y": "张三"}},
    {"at": datetime(2025, 9, 1, 9, 30, tzinfo=timezone.utc), "day": date(2025, 9, 1)},
    {"amount": Decimal("12.50"), "id": uuid.UUID("12345678-1234-5678-1234-567812345678")},
    {"point": Point(3, "甲")},
    {"huge": 2 ** 70},  # beyond 64 bits: orjson refuses, Flask's provider answers
    {2: "two", 1: "one"},  # non-string keys: likewise
]


@pytest.fixture
def app():
    return Flask("json-provider-test")  # providers hold a weak reference to it: kept for the test


@pytest.fixture
def providers(app):
    return OrjsonProvider(app), DefaultJSONProvider(app)


@pytest.mark.parametrize("value", VALUES)
def test_the_same_json_values_as_flasks_provider(providers, value):
    ours, flasks = providers
    assert json.loads(ours.dumps(value)) == json.loads(flasks.dumps(value))


def test_keys_sorted_and_text_as_utf8(providers):
    ours, _ = providers
    text = ours.dumps({"b": 1, "a": {"d": 2, "c": "张三"}})
    assert text == '{"a":{"c":"张三","d":2},"b":1}'


def test_a_date_is_an_http_date_as_in_flask(providers):
    ours, _ = providers
    assert json.loads(ours.dumps({"at": datetime(2025, 9, 1, 9, 30, tzinfo=timezone.utc)})) == \
        {"at": "Mon, 01 Sep 2025 09:30:00 GMT"}


def test_options_go_to_flasks_provider(providers):
    ours, flasks = providers
    assert ours.dumps({"b": 1, "a": 2}, indent=2) == flasks.dumps({"b": 1, "a": 2}, indent=2)


def test_a_response_is_json_with_a_trailing_newline(app, providers):
    ours, _ = providers
    with app.app_context():
        response = ours.response({"b": [1], "a": "甲"})
    assert response.mimetype == "application/json"
    assert response.get_data(as_text=True) == '{"a":"甲","b":[1]}\n'
