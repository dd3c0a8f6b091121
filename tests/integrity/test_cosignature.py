"""Witness cosignatures: c2sp.org/tlog-cosignature (Ed25519, cosignature/v1), checked against the spec."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timezone

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.integrity.checkpoint import (
    Checkpoint,
    CheckpointError,
    generate_key,
    key_id,
    open_note,
    public_key_to_text,
    sign,
)
from ledger.integrity.cosignature import (
    CosignatureError,
    add_cosignature,
    cosign,
    load_witness_vkey,
    signed_message,
    split_note,
    verify_cosignatures,
    witness_key_id,
    witness_vkey_text,
)

# The example of c2sp.org/tlog-cosignature ("Format" and "Ed25519 signed message").
SPEC_TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_MESSAGE = ("cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n"
                "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n")
SPEC_COSIG = ("jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ"
              "+qnA==")
# A real witness's verifier key (type 0x04), from transparency-dev/formats note/note_cosigv1_test.go.
REMORA_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
# A log (type 0x01) verifier key, from golang.org/x/mod/sumdb/note.
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
# RFC 8032 §7.1 test 1 secret key: a fixed witness key, so signatures are reproducible.
WITNESS_KEY = Ed25519PrivateKey.from_private_bytes(
    bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
WITNESS = "witness.example.com/w1"
NOW = datetime(2025, 10, 1, tzinfo=timezone.utc)


def raw(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def log_note(size: int = 5, key: Ed25519PrivateKey | None = None, origin: str = "caseledger.test/log") -> str:
    return sign(Checkpoint(origin, size, hashlib.sha256(b"%d" % size).digest(), NOW), key or LOG_KEY, origin)


LOG_KEY = generate_key()


def test_key_id_of_a_real_witness_vkey() -> None:
    name, public_key = load_witness_vkey(REMORA_VKEY)
    assert name == "remora.n621.de"
    # key ID = SHA-256(name || 0x0A || 0x04 || 32-byte public key)[:4], spelled out:
    expected = hashlib.sha256(b"remora.n621.de" + b"\n" + b"\x04" + raw(public_key)).digest()[:4]
    assert witness_key_id(name, public_key) == expected == bytes.fromhex("da77ade7")
    assert witness_vkey_text(public_key, name) == REMORA_VKEY  # re-encodes to the same text
    # the same key as a log key (type 0x01) has another ID: the two kinds never match each other
    assert key_id(name, public_key) != expected


def test_spec_example_cosignature_layout() -> None:
    blob = base64.b64decode(SPEC_COSIG)
    assert len(blob) == 4 + 8 + 64
    assert int.from_bytes(blob[4:12], "big") == 1679315147  # the "time" of the spec's signed message
    # transparency-dev/formats TestCosignatureTimestamp vector
    other = base64.b64decode("ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEB"
                             "YJXORmnFBOBA==")
    assert int.from_bytes(other[4:12], "big") == 1727964367


def test_signed_message_is_the_spec_example_byte_for_byte() -> None:
    assert signed_message(SPEC_TEXT, 1679315147) == SPEC_MESSAGE.encode("utf-8")
    assert signed_message(SPEC_TEXT, 0).startswith(b"cosignature/v1\ntime 0\n")  # no leading zeros


def test_cosignature_line_is_built_as_the_spec_says() -> None:
    line = cosign(SPEC_TEXT, WITNESS_KEY, WITNESS, 1679315147)
    public = WITNESS_KEY.public_key()
    key = hashlib.sha256(WITNESS.encode() + b"\n\x04" + raw(public)).digest()[:4]
    blob = key + (1679315147).to_bytes(8, "big") + WITNESS_KEY.sign(SPEC_MESSAGE.encode("utf-8"))
    assert line == f"— {WITNESS} {base64.b64encode(blob).decode()}\n"
    vkey_material = base64.b64encode(b"\x04" + raw(public)).decode()
    assert witness_vkey_text(public, WITNESS) == f"{WITNESS}+{key.hex()}+{vkey_material}"


def test_round_trip_on_a_signed_checkpoint() -> None:
    note = log_note()
    text, _ = split_note(note)
    cosigned = add_cosignature(note, cosign(text, WITNESS_KEY, WITNESS, 1_700_000_000))
    assert cosigned.startswith(note)  # the log's note, one line longer
    assert verify_cosignatures(cosigned, [(WITNESS, WITNESS_KEY.public_key())], 1) == [WITNESS]
    # the log's own signature still opens: its verifier ignores the witness line
    assert open_note(cosigned, LOG_KEY.public_key(), "caseledger.test/log").size == 5
    name, public_key = load_witness_vkey(witness_vkey_text(WITNESS_KEY.public_key(), WITNESS))
    assert verify_cosignatures(cosigned, [(name, public_key)], 1) == [WITNESS]


def test_quorum_counts_distinct_witnesses() -> None:
    note, second = log_note(), generate_key()
    text, _ = split_note(note)
    note = add_cosignature(note, cosign(text, WITNESS_KEY, WITNESS, 1))
    note = add_cosignature(note, cosign(text, second, "w2.example", 2))
    both = [(WITNESS, WITNESS_KEY.public_key()), ("w2.example", second.public_key())]
    assert verify_cosignatures(note, both, 2) == [WITNESS, "w2.example"]
    with pytest.raises(CosignatureError, match="2 of the required 3"):
        verify_cosignatures(note, both + [("w3.example", generate_key().public_key())], 3)
    with pytest.raises(CosignatureError, match="1 of the required 2"):  # listing one witness twice
        verify_cosignatures(note, [both[0], both[0]], 2)


def test_add_cosignature_keeps_one_line_per_key() -> None:
    note = log_note()
    text, _ = split_note(note)
    line = cosign(text, WITNESS_KEY, WITNESS, 10)
    once = add_cosignature(note, line)
    assert add_cosignature(once, line) == once == add_cosignature(note, line.rstrip("\n"))
    later = add_cosignature(once, cosign(text, WITNESS_KEY, WITNESS, 20))  # a re-cosigning replaces
    assert len(split_note(later)[1]) == 2 and line.rstrip("\n") not in later
    for bad in ("", "witness AAAA", "— name-only", "— w !!!!", "— a+b AAAAAAAA", None):
        with pytest.raises(CosignatureError):
            add_cosignature(note, bad)


def test_tampered_body_fails() -> None:
    note = log_note(5)
    text, _ = split_note(note)
    cosigned = add_cosignature(note, cosign(text, WITNESS_KEY, WITNESS, 10))
    forged = cosigned.replace("\n5\n", "\n6\n", 1)
    with pytest.raises(CosignatureError, match="invalid cosignature"):
        verify_cosignatures(forged, [(WITNESS, WITNESS_KEY.public_key())], 1)
    # and a changed timestamp: the time is signed too
    b64 = split_note(cosigned)[1][1][2:].partition(" ")[2]
    blob = bytearray(base64.b64decode(b64))
    blob[11] ^= 1
    retimed = cosigned.replace(b64, base64.b64encode(bytes(blob)).decode())
    with pytest.raises(CosignatureError, match="invalid cosignature"):
        verify_cosignatures(retimed, [(WITNESS, WITNESS_KEY.public_key())], 1)


def test_wrong_key_or_name_is_not_counted() -> None:
    note = log_note()
    cosigned = add_cosignature(note, cosign(split_note(note)[0], WITNESS_KEY, WITNESS, 10))
    stranger = generate_key().public_key()
    with pytest.raises(CosignatureError, match="0 of the required 1"):
        verify_cosignatures(cosigned, [(WITNESS, stranger)], 1)
    with pytest.raises(CosignatureError, match="0 of the required 1"):  # same key, other name: other ID
        verify_cosignatures(cosigned, [("w9.example", WITNESS_KEY.public_key())], 1)
    assert verify_cosignatures(cosigned, [(WITNESS, stranger)], 0) == []
    # the log's key is not a witness key: its 0x01 signature is never taken for a cosignature
    with pytest.raises(CosignatureError, match="0 of the required 1"):
        verify_cosignatures(note, [("caseledger.test/log", LOG_KEY.public_key())], 1)


def test_malformed_notes_raise_only_cosignature_error() -> None:
    good = add_cosignature(log_note(), cosign(split_note(log_note())[0], WITNESS_KEY, WITNESS, 10))
    witness_line = split_note(good)[1][1]
    key_only = base64.b64encode(base64.b64decode(witness_line.split(" ")[2])[:40]).decode()
    bad_notes = [
        None, 42, "", "no signature block\n", good.rstrip("\n"), good.replace("— ", "- ", 1),
        good.replace(witness_line, f"— {WITNESS} ###"), good.replace(witness_line, f"— {WITNESS}"),
        good.replace(witness_line, f"— {WITNESS} {key_only}"),  # truncated cosignature under our key
        good.replace(witness_line, f"— bad+name {witness_line.split(' ')[2]}"),
        good.replace("\n5\n", "\n5\x01\n"), good.replace("\n5\n", "\n\ud800\n"), good + "\n",
        good + "".join(f"— x{i} AAAAAAAA\n" for i in range(100)),
    ]
    for note in bad_notes:
        with pytest.raises(CosignatureError):
            verify_cosignatures(note, [(WITNESS, WITNESS_KEY.public_key())], 1)
    assert issubclass(CosignatureError, CheckpointError)
    for witnesses, required in (([("a", "not a key")], 1), ("nope", 1), ([], -1), ([], True), ([], "1")):
        with pytest.raises(CosignatureError):
            verify_cosignatures(good, witnesses, required)


def test_timestamp_bounds() -> None:
    text = split_note(log_note())[0]
    for bad in (-1, 2**63, True, 1.5, "10", None):
        with pytest.raises(CosignatureError, match="timestamp"):
            cosign(text, WITNESS_KEY, WITNESS, bad)
    top = add_cosignature(log_note(), cosign(text, WITNESS_KEY, WITNESS, 2**63 - 1))
    assert verify_cosignatures(top, [(WITNESS, WITNESS_KEY.public_key())], 1) == [WITNESS]
    # a line claiming a time past 2**63 - 1, validly signed over that time, is still rejected
    too_late = 2**63
    message = f"cosignature/v1\ntime {too_late}\n{text}".encode()
    blob = witness_key_id(WITNESS, WITNESS_KEY.public_key()) + too_late.to_bytes(8, "big") + WITNESS_KEY.sign(message)
    forged = log_note() + f"— {WITNESS} {base64.b64encode(blob).decode()}\n"
    with pytest.raises(CosignatureError, match="timestamp"):
        verify_cosignatures(forged, [(WITNESS, WITNESS_KEY.public_key())], 1)


def test_cosign_refuses_bad_names_and_texts() -> None:
    for name in ("", "a b", "a+b", "tab\t"):
        with pytest.raises(CosignatureError):
            cosign(SPEC_TEXT, WITNESS_KEY, name, 1)
        with pytest.raises(CosignatureError):
            witness_vkey_text(WITNESS_KEY.public_key(), name)
    for text in ("no newline", "ctrl\x07\n", "\ud800\n", None):
        with pytest.raises(CosignatureError):
            cosign(text, WITNESS_KEY, WITNESS, 1)


def test_load_witness_vkey_is_strict() -> None:
    good = witness_vkey_text(WITNESS_KEY.public_key(), WITNESS)
    name, key_hex, b64 = good.split("+", 2)  # base64 may contain "+" too
    stranger = base64.b64encode(b"\x04" + raw(generate_key().public_key())).decode()
    for bad in (PETER_VKEY,  # a log key, type 0x01
                public_key_to_text(WITNESS_KEY.public_key(), WITNESS),
                f"{name}+00000000+{b64}", f"{name}+{key_hex}+{stranger}", f"{name}+{key_hex}", f"{name}+{key_hex}+!!",
                f"{name}+{key_hex}+{base64.b64encode(base64.b64decode(b64)[:20]).decode()}",
                f"+{key_hex}+{b64}", f"{name}+{key_hex[:6]}+{b64}", "", None, 7):
        with pytest.raises(CosignatureError):
            load_witness_vkey(bad)
    assert load_witness_vkey(f"  {good}\n")[0] == WITNESS
