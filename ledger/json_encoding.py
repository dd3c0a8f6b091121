"""JSON encoders whose C encoder is made once, not per call.

``json.JSONEncoder.encode`` builds a new C encoder (``c_make_encoder``) and a float formatter on
every call: ~2–3 µs, about as much as encoding a whole event. Every stored event is encoded once
(eventsourcing's ``JSONTranscoder``) and one with personal data a second time (its sealed
plaintext, ``ledger.crypto``), so appending paid it up to twice per event. :class:`OneShotEncoder`
makes the C encoder when it is made and writes exactly the text ``JSONEncoder.encode`` writes.

It does not check for circular references (``check_circular=False``): the check keeps a table of
the containers being encoded inside the encoder, which a shared encoder cannot keep — two threads
encoding the same dict at once would each see the other's entry as a cycle. Event states are trees
of JSON values; a cycle in one is a programming error, and still fails (``RecursionError``).
"""

from __future__ import annotations

from json.encoder import (
    JSONEncoder,
    c_make_encoder,
    encode_basestring,
    encode_basestring_ascii,
)
from typing import Any


class OneShotEncoder(JSONEncoder):
    def __init__(self, **options: Any):
        super().__init__(**{**options, "check_circular": False})
        self._encode = None
        if c_make_encoder is not None and self.indent is None:  # as JSONEncoder.iterencode decides
            self._encode = c_make_encoder(
                None, self.default, encode_basestring_ascii if self.ensure_ascii else encode_basestring,
                self.indent, self.key_separator, self.item_separator, self.sort_keys, self.skipkeys,
                self.allow_nan)

    def encode(self, o: Any) -> str:
        if self._encode is None or isinstance(o, str):
            return super().encode(o)
        return "".join(self._encode(o, 0))

    @classmethod
    def like(cls, encoder: JSONEncoder) -> OneShotEncoder:
        """One writing what ``encoder`` writes (same separators, escaping, key order and default)."""
        return cls(skipkeys=encoder.skipkeys, ensure_ascii=encoder.ensure_ascii, allow_nan=encoder.allow_nan,
                   sort_keys=encoder.sort_keys, indent=encoder.indent,
                   separators=(encoder.item_separator, encoder.key_separator), default=encoder.default)
