"""Flask's JSON provider with orjson underneath: the same documents, encoded in C (issue 22).

Flask's default provider encodes every JSON response with the standard library's ``json.dumps``
(keys sorted, in pure Python for sorted keys); on a read of a small record that was a measurable
share of the request. This provider gives the same JSON values: keys sorted, the same answers for
what JSON has no type for (``datetime``/``date`` as HTTP dates, ``Decimal`` and ``UUID`` as strings,
dataclasses as objects — Flask's own ``default`` function, which orjson is told to call for dates
and dataclasses instead of its native forms). Two differences in bytes, not in meaning: non-ASCII
text is sent as UTF-8 rather than ``\\uXXXX`` escapes (the response is ``application/json``, UTF-8),
and NaN/Infinity, which are not JSON, become ``null``. Whatever orjson refuses (an integer beyond
64 bits, a dict with non-string keys) and every call with options (``indent=2`` for the OpenAPI
document, for example) goes to Flask's provider as before.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class OrjsonProvider(DefaultJSONProvider):
    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs:
            return super().dumps(obj, **kwargs)
        try:
            return orjson.dumps(obj, default=self.default, option=_OPTIONS).decode("utf-8")
        except (TypeError, orjson.JSONEncodeError):
            # e.g. a lone surrogate in stored text: the library escapes it (\\ud800), compact as orjson is.
            return super().dumps(obj, separators=(",", ":"))

    def response(self, *args: Any, **kwargs: Any) -> Any:
        if self.compact is False or (self.compact is None and self._app.debug):
            return super().response(*args, **kwargs)  # indented for a person: the library's
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(f"{self.dumps(obj)}\n", mimetype=self.mimetype)
