"""flask-smorest's Blueprint, parsing request arguments as it does, minus two costs of every request.

Every blueprint of the API is this one (issue 22, the command path):

- **one schema instance per argument schema**, not one per request: given a schema *class*,
  webargs instantiates it for each request, and a marshmallow ``Schema()`` deep-copies all its
  declared fields (and binds them to the schema, a reference cycle left for the garbage collector).
  Schemas keep no state between loads (marshmallow 4 has no ``context``), and flask-smorest already
  shares its response schema instances the same way across threads. The OpenAPI document still gets
  the class, as before.
- **the body parsed once**: :func:`api.boundary.check_request` has parsed a JSON body by the stricter
  rules of :func:`domain.text.loads` (and refused it if it broke them) before any view runs; the
  value it kept is the one webargs would have got from ``json.loads`` of the same bytes (the same
  decoding, the same numbers), so it is handed over instead of parsed a second time.
"""

from __future__ import annotations

import threading
from typing import Any

import flask_smorest
from flask import g
from marshmallow import Schema
from webargs.flaskparser import FlaskParser

#: ``g`` attribute holding ``(value,)``, the JSON body :mod:`api.boundary` parsed (a 1-tuple: null is a body too).
PARSED_BODY = "parsed_json_body"


class ArgumentsParser(FlaskParser):
    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._schemas: dict[type[Schema], Schema] = {}
        self._lock = threading.Lock()

    def _get_schema(self, argmap: Any, req: Any) -> Schema:
        if isinstance(argmap, type) and issubclass(argmap, Schema):
            schema = self._schemas.get(argmap)
            if schema is None:
                with self._lock:
                    schema = self._schemas.setdefault(argmap, argmap())
            return schema
        return super()._get_schema(argmap, req)

    def _raw_load_json(self, req: Any) -> Any:
        parsed = g.get(PARSED_BODY)
        if parsed is not None:
            return parsed[0]
        return super()._raw_load_json(req)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = ArgumentsParser()
