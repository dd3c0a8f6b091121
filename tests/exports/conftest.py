"""The API fixtures of tests/api (callers with tokens, the app), loaded by path: test folders are not packages."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("api_test_fixtures", Path(__file__).parents[1] / "api" / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)
tokens, app, api, customer_id = _fixtures.tokens, _fixtures.app, _fixtures.api, _fixtures.customer_id
