"""``caseledger witness``: an offline witness that cosigns the log's checkpoints (services.witness).

Errors are one ``error: …`` line on stderr: exit code 1 for unusable input or state, 2 when the
witness refuses a checkpoint (wrong key, rollback, fork) — so scripts can tell an alarm from a typo.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from pathlib import Path
from typing import NoReturn

import click

from cli.errors import OneLineError
from ledger.integrity.checkpoint import CheckpointError, parse_body
from ledger.integrity.cosignature import split_note
from services.witness import Witness, WitnessError, WitnessRefused


def _fail(message: str, code: int = 1) -> NoReturn:
    raise OneLineError(message, code)  # one line on stderr, never wrapped (cli.errors)


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")  # bytes as signed: no newline translation
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {path}: {exc}")


def _hash(text: str) -> bytes:
    """One proof hash, in hex (as ``caseledger proof`` prints) or base64 (as tlog-witness sends)."""
    try:
        raw = bytes.fromhex(text) if re.fullmatch(r"[0-9a-fA-F]{64}", text) else base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        _fail(f"proof: {text[:70]!r} is not a 32-byte hash in hex or base64")
    return raw


def read_proof(path: Path) -> tuple[list[bytes], int | None, int | None]:
    """(hashes, old size, new size) from the JSON of ``caseledger proof --old-size N``, or from
    one hash per line (sizes unknown)."""
    text = _read_text(path)
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            _fail(f"proof: {path} is not valid JSON: {exc}")
        hashes, old, new = data.get("proof"), data.get("old_size"), data.get("new_size")
        if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
            _fail(f"proof: {path} has no \"proof\" list of hashes")
        if any(v is not None and (isinstance(v, bool) or not isinstance(v, int)) for v in (old, new)):
            _fail(f"proof: old_size and new_size in {path} must be integers")
        return [_hash(h) for h in hashes], old, new
    return [_hash(line.strip()) for line in text.splitlines() if line.strip()], None, None


def _open(state: Path) -> Witness:
    try:
        return Witness.open(state)
    except WitnessError as exc:
        _fail(str(exc))


@click.group()
def witness() -> None:
    """An offline witness: cosigns checkpoints after checking the log only grew (c2sp.org/tlog-witness)."""


_STATE = click.option("--state", type=click.Path(file_okay=False, path_type=Path), required=True,
                      help="The witness's own folder (key, pinned log key, latest checkpoint).")


@witness.command("init")
@_STATE
@click.option("--name", required=True, help="The witness's name, e.g. witness.example.org/w1.")
@click.option("--log-key", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The log's verifier key file (keys/log-verifier.txt), obtained from its operator.")
def witness_init(state: Path, name: str, log_key: Path) -> None:
    """Create a witness for one log; prints the witness's verifier key."""
    keys = [line.strip() for line in _read_text(log_key).splitlines()
            if line.strip() and not line.lstrip().startswith("#")]
    if len(keys) != 1:
        _fail(f"{log_key} must hold exactly one verifier key, not {len(keys)}")
    try:
        created = Witness.init(state, name, keys[0])
    except WitnessError as exc:
        _fail(str(exc))
    click.echo(created.vkey)


@witness.command("cosign")
@_STATE
@click.option("--checkpoint", "checkpoint_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The signed checkpoint note (caseledger checkpoint).")
@click.option("--proof", "proof_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Consistency proof from the witness's latest size (caseledger proof --old-size N).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the cosigned note here.")
def witness_cosign(state: Path, checkpoint_file: Path, proof_file: Path | None, out: Path | None) -> None:
    """Cosign a checkpoint that extends the last one cosigned; prints the cosigned note."""
    w = _open(state)
    note = _read_text(checkpoint_file)
    proof, old_size, new_size = read_proof(proof_file) if proof_file else ([], None, None)
    size = _size_of(note)
    if new_size is not None and size is not None and new_size != size:
        _fail(f"the proof is for tree size {new_size}, but the checkpoint has size {size}")
    try:
        cosigned = w.cosign(note, proof, int(time.time()), old_size=old_size)
    except WitnessRefused as exc:
        _fail(f"refused: {exc}", 2)
    except WitnessError as exc:
        _fail(str(exc))
    if out is None:
        click.echo(cosigned, nl=False)
        return
    try:
        out.write_bytes(cosigned.encode("utf-8"))
    except OSError as exc:
        _fail(f"cannot write {out}: {exc}")
    click.echo(f"cosigned the checkpoint of size {size}; wrote {out}", err=True)


def _size_of(note: str) -> int | None:
    """The tree size a note claims, unverified (for messages only); None if it does not parse."""
    try:
        return parse_body(split_note(note)[0]).size
    except CheckpointError:
        return None


@witness.command("show")
@_STATE
def witness_show(state: Path) -> None:
    """The witness's key, the log key it trusts and the latest checkpoint it cosigned."""
    w = _open(state)
    try:
        _, _, log_vkey = w.log_key()
        latest = w.latest()
    except WitnessError as exc:
        _fail(str(exc))
    click.echo(f"witness:    {w.vkey}\nlog key:    {log_vkey}")
    if latest is None:
        click.echo("latest:     nothing cosigned yet (the first checkpoint will be trusted on first use)")
        return
    checkpoint = latest[0]
    click.echo(f"origin:     {checkpoint.origin}\nsize:       {checkpoint.size}\n"
               f"root:       {base64.b64encode(checkpoint.root).decode('ascii')}\n"
               f"time:       {checkpoint.time.isoformat()}")
