"""The API fixtures of tests/api (loaded by path: the test folders are not packages)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("api_test_fixtures_queues", Path(__file__).parents[1] / "api" / "conftest.py")
_api_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_api_fixtures)
tokens, app, api, customer_id = _api_fixtures.tokens, _api_fixtures.app, _api_fixtures.api, _api_fixtures.customer_id
