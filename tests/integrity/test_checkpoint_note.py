"""Signed checkpoints: C2SP signed-note format, checked against golang.org/x/mod/sumdb/note vectors."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.integrity.checkpoint import (
    Checkpoint, CheckpointError, generate_key, key_id, load_private_key, load_public_key, open_note,
    parse_body, private_key_to_pem, public_key_to_text, sign, sign_note, verify_note,
)

# --- Vectors from golang.org/x/mod/sumdb/note/note_test.go (TestNewVerifier, TestSign, TestOpen) ---
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = ("— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6Ryy"
             "BwJnAM=\n")
ENOCH_SIG = ("— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc"
             "+QQ=\n")


def peter_private_key() -> Ed25519PrivateKey:
    raw = base64.b64decode(PETER_SKEY.split("+", 4)[4])
    assert raw[0] == 1  # Ed25519
    return Ed25519PrivateKey.from_private_bytes(raw[1:])


def test_go_verifier_key_and_key_id() -> None:
    name, key = load_public_key(PETER_VKEY)
    assert name == "PeterNeumann"
    assert key_id(name, key).hex() == "c74f20a3"
    # key ID = SHA-256(name || 0x0A || 0x01 || raw public key)[:4], spelled out:
    raw = base64.b64decode(PETER_VKEY.split("+")[2])
    assert hashlib.sha256(b"PeterNeumann\n" + raw).digest()[:4].hex() == "c74f20a3"
    assert public_key_to_text(key, name) == PETER_VKEY
    assert public_key_to_text(peter_private_key().public_key(), "PeterNeumann") == PETER_VKEY


def test_go_signature_is_reproduced_byte_for_byte() -> None:
    # Ed25519 is deterministic, so our note must equal the Go library's output exactly.
    assert sign_note(GO_TEXT, peter_private_key(), "PeterNeumann") == GO_TEXT + "\n" + PETER_SIG


def test_go_open() -> None:
    _, peter = load_public_key(PETER_VKEY)
    _, enoch = load_public_key(ENOCH_VKEY)
    note = GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert verify_note(note, peter, "PeterNeumann") == GO_TEXT  # Enoch's signature is ignored
    assert verify_note(note, enoch, "EnochRoot") == GO_TEXT
    with pytest.raises(CheckpointError, match="invalid signature"):
        # Go inserts "ABCD" at byte 60; the em dash is 3 bytes in UTF-8, so character 58 here.
        verify_note(GO_TEXT + "\n" + PETER_SIG[:58] + "ABCD" + PETER_SIG[58:], peter, "PeterNeumann")
    with pytest.raises(CheckpointError, match="no signature"):
        verify_note(GO_TEXT + "\n" + ENOCH_SIG, peter, "PeterNeumann")
    with pytest.raises(CheckpointError):
        verify_note(GO_TEXT + "\n" + PETER_SIG * 101, peter, "PeterNeumann")  # too many signatures


@pytest.mark.parametrize("note", [
    GO_TEXT,
    GO_TEXT + "\n",
    GO_TEXT + "\n" + PETER_SIG[:-1],
    "\x01" + GO_TEXT + "\n" + PETER_SIG,
    "\udcff" + GO_TEXT + "\n" + PETER_SIG,  # the str form of an invalid UTF-8 byte
    GO_TEXT + "\n" + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
    GO_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
])
def test_go_malformed_notes(note: str) -> None:
    _, peter = load_public_key(PETER_VKEY)
    with pytest.raises(CheckpointError):
        verify_note(note, peter, "PeterNeumann")


def test_go_mangled_verifier_keys_are_refused() -> None:
    key = PETER_VKEY
    mangled = {key[i:j] for i in range(len(key) + 1) for j in range(i + 1, len(key) + 1)} - {key}
    mangled |= {key[:i] + chr(ord(key[i]) + 1) + key[i + 1:] for i in range(len(key))}
    mangled |= {
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",  # wrong length key
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # unknown algorithm
    }
    for text in mangled:
        with pytest.raises(CheckpointError):
            load_public_key(text)


# --- Checkpoints ---

ORIGIN = "caseledger.example/log"
ROOT = hashlib.sha256(b"some root").digest()
TIME = datetime(2025, 9, 1, 1, 2, 3, tzinfo=timezone.utc)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def signed(checkpoint: Checkpoint | None = None) -> str:
    return sign(checkpoint or Checkpoint(ORIGIN, 42, ROOT, TIME), KEY, ORIGIN)


def test_round_trip() -> None:
    checkpoint = Checkpoint(ORIGIN, 42, ROOT, TIME)
    note = signed(checkpoint)
    body = f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}\ntime 2025-09-01T01:02:03Z\n"
    assert checkpoint.body() == body.encode()
    assert note.startswith(body + "\n— " + ORIGIN + " ") and note.endswith("\n")
    assert open_note(note, KEY.public_key(), ORIGIN) == checkpoint


@pytest.mark.parametrize("moment", [
    datetime(2025, 9, 1, 9, 2, 3, 123456, tzinfo=timezone(timedelta(hours=8))),
    datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=timezone.utc),
    datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=-5))),
])
def test_time_round_trips_as_utc(moment: datetime) -> None:
    opened = open_note(signed(Checkpoint(ORIGIN, 0, ROOT, moment)), KEY.public_key(), ORIGIN)
    assert opened.time == moment and opened.time.tzinfo == timezone.utc


def test_wrong_key_or_name_is_refused() -> None:
    with pytest.raises(CheckpointError, match="no signature"):
        open_note(signed(), OTHER_KEY.public_key(), ORIGIN)
    with pytest.raises(CheckpointError, match="no signature"):
        open_note(signed(), KEY.public_key(), "caseledger.example/other")


@pytest.mark.parametrize(("old", "new"), [
    ("\n42\n", "\n43\n"),  # edited size
    ("\n42\n", "\n420\n"),
    (base64.b64encode(ROOT).decode(), base64.b64encode(hashlib.sha256(b"other").digest()).decode()),  # root
    ("T01:02:03Z", "T01:02:04Z"),  # edited time
    (ORIGIN + "\n", "caseledger.example/lag\n"),  # edited origin
])
def test_edited_checkpoints_are_refused(old: str, new: str) -> None:
    note = signed()
    assert old in note
    with pytest.raises(CheckpointError, match="invalid signature"):
        open_note(note.replace(old, new, 1), KEY.public_key(), ORIGIN)


def test_truncated_or_missing_signature_is_refused() -> None:
    note = signed()
    for cut in (1, 2, 5, 30, 60, len(note) - len(Checkpoint(ORIGIN, 42, ROOT, TIME).body()) - 1):
        with pytest.raises(CheckpointError):
            open_note(note[:-cut], KEY.public_key(), ORIGIN)
    with pytest.raises(CheckpointError):
        open_note(Checkpoint(ORIGIN, 42, ROOT, TIME).body().decode(), KEY.public_key(), ORIGIN)


def test_other_signatures_are_ignored_and_cosigning_works() -> None:
    note = signed()
    cosigned = note + sign_note(note.split("\n\n")[0] + "\n", OTHER_KEY, "witness.example").split("\n\n")[1]
    assert open_note(cosigned, KEY.public_key(), ORIGIN) == open_note(note, KEY.public_key(), ORIGIN)
    assert open_note(cosigned, OTHER_KEY.public_key(), "witness.example").size == 42


@pytest.mark.parametrize("body", [
    f"{ORIGIN}\n042\n{base64.b64encode(ROOT).decode()}\ntime 2025-09-01T01:02:03Z\n",  # leading zero
    f"{ORIGIN}\n-1\n{base64.b64encode(ROOT).decode()}\ntime 2025-09-01T01:02:03Z\n",
    f"{ORIGIN}\n42\n{base64.b64encode(ROOT[:31]).decode()}\ntime 2025-09-01T01:02:03Z\n",  # short root
    f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode().rstrip('=')}\ntime 2025-09-01T01:02:03Z\n",  # no padding
    f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}\n",  # no time line
    f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}\ntime 2025-09-01T01:02:03Z\nextra\n",
    f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}\ntime 2025-09-01T01:02:03+00:00\n",
    f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}\ntime 2025-09-01T01:02:03.000000Z\n",  # not canonical
    f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}\ntime 2025-02-30T01:02:03Z\n",
    f"{ORIGIN}\n４２\n{base64.b64encode(ROOT).decode()}\ntime 2025-09-01T01:02:03Z\n",  # non-ASCII digits
    f"\n42\n{base64.b64encode(ROOT).decode()}\ntime 2025-09-01T01:02:03Z\n",  # empty origin
])
def test_signed_but_malformed_checkpoints_are_refused(body: str) -> None:
    with pytest.raises(CheckpointError):
        parse_body(body)
    note = sign_note(body, KEY, ORIGIN) if "\n\n" not in body and not body.startswith("\n") else None
    if note is not None:
        with pytest.raises(CheckpointError):
            open_note(note, KEY.public_key(), ORIGIN)


@pytest.mark.parametrize("kwargs", [
    {"origin": ""}, {"origin": "a\nb"}, {"size": -1}, {"size": True}, {"root": ROOT[:31]},
    {"root": ROOT.hex()}, {"time": datetime(2025, 1, 1)},
])
def test_checkpoint_fields_are_validated(kwargs: dict) -> None:
    fields = {"origin": ORIGIN, "size": 1, "root": ROOT, "time": TIME} | kwargs
    with pytest.raises(CheckpointError):
        Checkpoint(**fields)


def test_key_helpers() -> None:
    key = generate_key()
    pem = private_key_to_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = load_private_key(pem)
    assert public_key_to_text(loaded.public_key(), ORIGIN) == public_key_to_text(key.public_key(), ORIGIN)
    name, public = load_public_key(public_key_to_text(key.public_key(), ORIGIN) + "\n")
    assert name == ORIGIN
    assert open_note(sign(Checkpoint(ORIGIN, 1, ROOT, TIME), loaded, ORIGIN), public, name).size == 1
    with pytest.raises(CheckpointError):
        load_private_key(b"not a key")
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    with pytest.raises(CheckpointError, match="Ed25519"):
        load_private_key(ec_pem)
    for bad_name in ("", "a b", "a+b", "tab\there"):
        with pytest.raises(CheckpointError):
            public_key_to_text(key.public_key(), bad_name)
        with pytest.raises(CheckpointError):
            sign(Checkpoint(ORIGIN, 1, ROOT, TIME), key, bad_name)
