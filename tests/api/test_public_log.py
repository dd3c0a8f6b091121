"""The public transparency log: no token, hashes only, rate-limited; proofs checked by an independent
RFC 9162 implementation (pymerkle), C2SP tlog-proof round trips and C2SP tlog-tiles rebuild the
signed root. Both backends (the api fixtures)."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest
from pymerkle import InclusionProof, InmemoryTree, InvalidProof
from pymerkle import verify_consistency as pymerkle_verify_consistency
from pymerkle import verify_inclusion as pymerkle_verify_inclusion

from api.auth import PUBLIC_LOG_PATHS
from api.log import RATE_LIMIT_CONFIG
from ledger import logproofs
from ledger.integrity.checkpoint import generate_key, open_note, public_key_to_text
from ledger.integrity.leaf import encode_leaf
from ledger.integrity.merkle import verify_consistency
from ledger.integrity.tlogproof import TlogProofError, format_proof, parse_proof, verify_proof
from ledger.keys import LogKeys
from ledger.logproofs import TilePathError, parse_tile_path, tile_path
from ledger.settings import Settings

PROBLEM = "application/problem+json"
TLOG_PROOF = "application/x-tlog-proof"
INTERACTIONS = 300  # with the tokens and the customer: more than one full level-0 tile


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def node(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


class Published:
    def __init__(self, api, env, ledger):
        keys = LogKeys.from_settings(Settings.from_environ(env))
        keys.init()
        name, key = keys.public_key()
        self.vkey = public_key_to_text(key, name)
        first = api.post("/log/checkpoints", as_="admin")
        lines = "\n".join(json.dumps({"channel": "email", "external_ref": f"pub-{i}"}) for i in range(INTERACTIONS))
        imported = api.post("/interactions/import", data=lines, content_type="application/x-ndjson")
        assert imported.status_code == 200, imported.json
        latest = api.post("/log/checkpoints", as_="admin")
        assert first.status_code == latest.status_code == 201
        self.first = open_note(first.get_data(as_text=True), key, name)
        self.note = latest.get_data(as_text=True)
        self.latest = open_note(self.note, key, name)
        self.size = self.latest.size
        # the leaves, from the stored events, and pymerkle's tree of them (RFC 9162 hashing)
        self.entries = [encode_leaf(uuid.UUID(str(n.originator_id)), n.originator_version, n.topic, bytes(n.state))
                        for n in ledger.recorder.select_notifications(start=1, limit=self.size)]
        self.tree = InmemoryTree("sha256")
        self.tree.append_entries(self.entries)
        assert self.tree.get_size() == self.size > 256

    def root_of(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) by pymerkle: the root of a tree of just those leaves."""
        tree = InmemoryTree("sha256")
        tree.append_entries(self.entries[start:end])
        return tree.get_root()


@pytest.fixture
def published(api, env, ledger) -> Published:
    return Published(api, env, ledger)


def rfc_consistency_ranges(m: int, n: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTHs make up PROOF(m, D[n]), RFC 9162 §2.1.4.1, in order."""
    def sub(m: int, start: int, end: int, b: bool) -> list[tuple[int, int]]:
        if m == end - start:
            return [] if b else [(start, end)]
        k = 1 << ((end - start - 1).bit_length() - 1)
        if m <= k:
            return sub(m, start, start + k, b) + [(start + k, end)]
        return sub(m - k, start + k, end, False) + [(start, start + k)]
    return [] if m in (0, n) else sub(m, 0, n, True)


def test_public_endpoints_answer_without_a_token_with_hashes_only(app, api, published):
    p = published
    assert {r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/log/") and "GET" in r.methods} \
        == PUBLIC_LOG_PATHS  # every GET of the log is public, and nothing else is
    note = api.get("/log/checkpoint", as_=None)
    assert note.status_code == 200 and note.mimetype == "text/plain" and note.get_data(as_text=True) == p.note
    assert note.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert api.client.head("/log/checkpoint").status_code == 200
    hex64 = lambda v: isinstance(v, str) and len(v) == 64 and bytes.fromhex(v)  # noqa: E731
    for path in (f"/log/proof/inclusion?leaf_index=5&tree_size={p.size}",
                 f"/log/proof/inclusion?leaf_hash={p.tree.get_leaf(6).hex()}"):
        body = api.get(path, as_=None).json
        assert set(body) == {"leaf_index", "tree_size", "leaf_hash", "root", "proof"}  # no position, no content
        assert body["leaf_index"] == 5 and all(hex64(v) for v in [body["leaf_hash"], body["root"], *body["proof"]])
    body = api.get(f"/log/proof/consistency?old={p.first.size}", as_=None).json
    assert set(body) == {"old", "new", "old_root", "new_root", "proof"}
    assert all(hex64(v) for v in [body["old_root"], body["new_root"], *body["proof"]])
    assert api.get("/log/tile/0/000", as_=None).mimetype == "application/octet-stream"
    # a token is optional: an unknown one is ignored here, and still refused everywhere else
    bogus = {"Authorization": "Bearer cl_unknown"}
    assert api.get("/log/checkpoint", as_=None, headers=bogus).status_code == 200
    assert api.get("/log/checkpoints", as_=None).status_code == 401  # not a public path
    assert api.post("/log/checkpoints", as_=None).status_code == 401
    assert api.get("/events", as_=None).status_code == 401


def test_lookup_by_aggregate_needs_a_token(api, customer_id, published):
    path = f"/log/proof/inclusion?aggregate_id={customer_id}&version=1"
    for headers in (None, {"Authorization": "Bearer cl_unknown"}):
        refused = api.get(path, as_=None, headers=headers)
        assert refused.status_code == 401 and refused.mimetype == PROBLEM
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert api.get(path, as_="agent").status_code == 403  # agents do not hold log.read
    body = api.get(path, as_="auditor").json
    assert "position" in body and body["leaf_hash"] == published.tree.get_leaf(body["leaf_index"] + 1).hex()


def test_inclusion_proofs_verify_with_pymerkle(api, published):
    p = published
    for size in (p.first.size, p.size):
        for index in sorted({0, 1, size // 2, 255, 256, size - 2, size - 1} & set(range(size))):
            body = api.get(f"/log/proof/inclusion?leaf_index={index}&tree_size={size}", as_=None).json
            leaf, root = bytes.fromhex(body["leaf_hash"]), bytes.fromhex(body["root"])
            ours = [bytes.fromhex(h) for h in body["proof"]]
            assert leaf == p.tree.get_leaf(index + 1) and root == p.tree.get_root(size)
            theirs = p.tree.prove_inclusion(index + 1, size)  # pymerkle counts leaves from 1
            assert theirs.path == [leaf, *ours]  # its path: the leaf, then RFC 9162's
            proof = InclusionProof("sha256", True, size, index + 1, theirs.rule, [leaf, *ours])
            pymerkle_verify_inclusion(leaf, root, proof, index=index + 1, size=size)
            with pytest.raises(InvalidProof):
                bad = InclusionProof("sha256", True, size, index + 1, theirs.rule, [leaf, *ours[:-1], sha256(b"x")])
                pymerkle_verify_inclusion(leaf, root, bad, index=index + 1, size=size)
            by_hash = api.get(f"/log/proof/inclusion?leaf_hash={body['leaf_hash'].upper()}&tree_size={size}", as_=None)
            assert by_hash.json == body
    assert p.tree.get_root(p.size) == p.latest.root and p.tree.get_root(p.first.size) == p.first.root


def test_consistency_proofs_verify_with_pymerkle(api, published):
    p = published
    for old, new in [(p.first.size, p.size), (1, p.size), (256, p.size), (255, 257), (3, 8), (p.size, p.size)]:
        body = api.get(f"/log/proof/consistency?old={old}&new={new}", as_=None).json
        old_root, new_root = p.tree.get_root(old), p.tree.get_root(new)
        assert bytes.fromhex(body["old_root"]) == old_root and bytes.fromhex(body["new_root"]) == new_root
        ours = [bytes.fromhex(h) for h in body["proof"]]
        # pymerkle's consistency path is not RFC 9162's (it goes down to a leaf), so: pymerkle's own
        # proof between the same two states verifies, and each of our hashes is the pymerkle-computed
        # root of the range RFC 9162 names, and they verify against pymerkle's roots
        pymerkle_verify_consistency(old_root, new_root, p.tree.prove_consistency(old, new),
                                    prior_size=old, later_size=new)
        assert ours == [p.root_of(a, b) for a, b in rfc_consistency_ranges(old, new)]
        assert verify_consistency(old, new, old_root, new_root, ours)
        if ours:
            assert not verify_consistency(old, new, old_root, new_root, [*ours[:-1], sha256(b"x")])


def test_tlog_proof_round_trips_and_verifies_offline(api, published):
    p = published
    index = 7
    text = api.get(f"/log/proof/inclusion?leaf_index={index}", as_=None, headers={"Accept": TLOG_PROOF})
    assert text.status_code == 200 and text.mimetype == TLOG_PROOF
    text = text.get_data(as_text=True)
    assert api.get(f"/log/proof/inclusion?leaf_index={index}&format=tlog-proof", as_=None).get_data(as_text=True) == text
    assert text.startswith(f"c2sp.org/tlog-proof@v1\nindex {index}\n") and text.endswith("\n\n" + p.note)
    parsed = parse_proof(text)
    assert parsed.index == index and parsed.checkpoint == p.note and parsed.extra is None
    assert format_proof(parsed.index, parsed.proof, parsed.checkpoint) == text
    leaf = p.tree.get_leaf(index + 1)
    assert list(parsed.proof) == p.tree.prove_inclusion(index + 1, p.size).path[1:]
    assert verify_proof(text, leaf, p.vkey) == p.latest
    # by leaf hash, and to an older signed checkpoint
    by_hash = api.get(f"/log/proof/inclusion?leaf_hash={leaf.hex()}&format=tlog-proof", as_=None).get_data(as_text=True)
    assert by_hash == text
    old = api.get(f"/log/proof/inclusion?leaf_index={index}&tree_size={p.first.size}&format=tlog-proof", as_=None)
    assert verify_proof(old.get_data(as_text=True), leaf, p.vkey) == p.first

    lines = text.split("\n")
    flipped = ("B" if lines[2][0] == "A" else "A") + lines[2][1:]  # one proof hash changed
    tampered = {
        "a proof hash": "\n".join([*lines[:2], flipped, *lines[3:]]),
        "the index": text.replace(f"index {index}\n", f"index {index + 1}\n", 1),
        "the checkpoint's size": text.replace(f"\n{p.size}\n", f"\n{p.size - 1}\n", 1),
        "whitespace": text.replace(f"index {index}", f"index  {index}", 1),
        "a dropped hash": "\n".join([*lines[:2], *lines[3:]]),
        "the header": text.replace("@v1", "@v2", 1),
    }
    for what, bad in tampered.items():
        assert bad != text, what
        with pytest.raises(TlogProofError):
            verify_proof(bad, leaf, p.vkey)
    with pytest.raises(TlogProofError):
        verify_proof(text, p.tree.get_leaf(index + 2), p.vkey)  # another leaf
    with pytest.raises(TlogProofError):
        verify_proof(text, leaf, public_key_to_text(generate_key().public_key(), p.latest.origin))  # another key
    with pytest.raises(TlogProofError):
        verify_proof(text, leaf, p.vkey, origin="someone.else/log")


def test_tlog_proof_needs_a_signed_checkpoint(api, env, customer_id):
    assert api.get("/log/proof/inclusion?leaf_index=0&format=tlog-proof", as_=None).status_code == 404
    LogKeys.from_settings(Settings.from_environ(env)).init()
    size = api.get("/log/proof/consistency?old=0", as_=None).json["new"]
    assert api.post("/log/checkpoints", as_="admin").status_code == 201
    assert api.post("/customers", json={"kind": "individual", "tier": "vip", "contact": {"name": "x"}}
                    ).status_code == 201  # a leaf no checkpoint covers yet
    assert api.get(f"/log/proof/inclusion?leaf_index={size}", as_=None).status_code == 200  # JSON: any tree
    late = api.get(f"/log/proof/inclusion?leaf_index={size}&format=tlog-proof", as_=None)
    assert late.status_code == 422 and late.mimetype == PROBLEM
    unsigned = api.get(f"/log/proof/inclusion?leaf_index=0&tree_size={size + 1}&format=tlog-proof", as_=None)
    assert unsigned.status_code == 404 and unsigned.mimetype == PROBLEM  # no checkpoint of that size


def test_tiles_rebuild_the_checkpoint_root(api, published):
    p = published
    fetched: dict[str, list[bytes]] = {}

    def tile(level: int, index: int, width: int) -> list[bytes]:
        path = tile_path(level, index, width)
        if path not in fetched:
            response = api.get(f"/log/tile/{path}", as_=None)
            assert response.status_code == 200 and response.mimetype == "application/octet-stream", path
            assert len(response.data) == 32 * width
            if width == 256:
                assert "immutable" in response.headers["Cache-Control"]
            fetched[path] = [response.data[i:i + 32] for i in range(0, len(response.data), 32)]
        return fetched[path]

    def stored(level: int, i: int) -> bytes:  # the i-th hash at tile level `level`, in the tree of p.size
        index = i // 256
        width = min(256, (p.size >> (8 * level)) - index * 256)
        return tile(level, index, width)[i % 256]

    def subtree(height: int, j: int) -> bytes:  # perfect subtree of 2**height leaves, the j-th
        level, rest = divmod(height, 8)
        hashes = [stored(level, (j << rest) + t) for t in range(1 << rest)]
        while len(hashes) > 1:
            hashes = [node(hashes[t], hashes[t + 1]) for t in range(0, len(hashes), 2)]
        return hashes[0]

    parts, start = [], 0  # the tree = perfect subtrees, one per set bit of its size, largest first
    for height in range(p.size.bit_length() - 1, -1, -1):
        if p.size >> height & 1:
            parts.append(subtree(height, start >> height))
            start += 1 << height
    root = parts[-1]
    for left in reversed(parts[:-1]):
        root = node(left, root)
    assert root == p.latest.root == p.tree.get_root(p.size)
    assert tile(0, 0, 256) == [p.tree.get_leaf(i) for i in range(1, 257)]
    assert tile(1, 0, 1) == [p.tree.get_root(256)]  # level 1: the roots of full level-0 tiles
    assert api.get("/log/tile/0/000.p/3", as_=None).data == b"".join(tile(0, 0, 256)[:3])  # an older partial tile

    beyond = [f"/log/tile/0/{tile_path(0, 1, 256)[2:]}", "/log/tile/1/000.p/2", "/log/tile/2/000.p/1",
              f"/log/tile/0/001.p/{p.size - 256 + 1}", "/log/tile/0/x001/000"]
    malformed = ["/log/tile/0/1", "/log/tile/0/0000", "/log/tile/0/x000/001", "/log/tile/00/000", "/log/tile/64/000",
                 "/log/tile/-1/000", "/log/tile/0/000.p/0", "/log/tile/0/000.p/256", "/log/tile/0/000.p/007",
                 "/log/tile/0/000.p", "/log/tile/0/001/x002", "/log/tile/0/000/", "/log/tile/entries/000",
                 "/log/tile/entries/000.p/3", "/log/tile/data/000", "/log/tile/0/x001/x002/x003/x004/x005/x006/x007/008"]
    for path in beyond + malformed:
        response = api.get(path, as_=None)
        assert response.status_code == 404 and response.mimetype == PROBLEM, path


def test_tile_paths_are_encoded_as_tlog_tiles_says():
    assert tile_path(0, 1234067) == "0/x001/x234/067"
    assert tile_path(2, 5, 17) == "2/005.p/17"
    assert tile_path(0, 1000) == "0/x001/000" and tile_path(1, 999) == "1/999"
    for index in (0, 1, 999, 1000, 1001, 999_999, 1_000_000, 1234067, 10**12 + 7):
        for width in (1, 255, 256):
            level, _, rest = tile_path(3, index, width).partition("/")
            assert parse_tile_path(level, rest) == (3, index, width)
    for level, rest in [("0", "1"), ("0", "x001"), ("0", "x000/001"), ("0", "001/x001"), ("01", "000"),
                        ("64", "000"), ("0", "000.p/0"), ("0", "000.p/256"), ("0", "000.p/01"), ("0", ""),
                        ("0", "000.p/"), ("0", "x1/000"), ("0", "0001"), ("entries", "000"), ("0", "abc")]:
        with pytest.raises(TilePathError):
            parse_tile_path(level, rest)


def test_lookup_by_hash_is_bounded_without_an_index(app, api, published, monkeypatch):
    p = published
    proofs = app.extensions["caseledger.logproofs"]
    assert proofs.leaf_hash_indexed == app.extensions["caseledger.log"].pg  # PostgreSQL: a hash index
    monkeypatch.setattr(logproofs, "LEAF_HASH_SCAN", 16)
    first, last = p.tree.get_leaf(1).hex(), p.tree.get_leaf(p.size).hex()
    assert api.get(f"/log/proof/inclusion?leaf_hash={last}", as_=None).json["leaf_index"] == p.size - 1
    old = api.get(f"/log/proof/inclusion?leaf_hash={first}&tree_size={p.size}", as_=None)
    if proofs.leaf_hash_indexed:
        assert old.status_code == 200 and old.json["leaf_index"] == 0
    else:
        assert old.status_code == 404 and "leaf_index" in old.json["detail"]
    absent = api.get(f"/log/proof/inclusion?leaf_hash={'0' * 64}", as_=None)
    assert absent.status_code == 404 and absent.mimetype == PROBLEM


def test_rate_limit_is_a_problem_with_retry_after(app, api, published):
    app.config[RATE_LIMIT_CONFIG] = "3/minute"
    statuses = [api.get("/log/proof/consistency?old=1", as_=None).status_code for _ in range(3)]
    limited = api.get("/log/tile/0/000", as_=None)
    assert statuses == [200, 200, 200] and limited.status_code == 429 and limited.mimetype == PROBLEM
    assert limited.json["status"] == 429 and limited.json["type"].endswith("/rate-limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert api.get("/log/checkpoint", as_="auditor").status_code == 200  # a caller with a token is not limited
    assert api.get("/healthz", as_=None).status_code == 200  # nor is anything but the public log


@pytest.mark.parametrize("query", [
    "", "leaf_index=1&leaf_hash=" + "a" * 64, "leaf_hash=xyz", "leaf_hash=" + "a" * 63, "leaf_hash=" + "g" * 64,
    "leaf_index=-1", f"leaf_index={2**63}", "leaf_index=abc", "leaf_index=0&tree_size=0",
    f"leaf_index=0&tree_size={2**62}", f"leaf_index={2**62}", "leaf_index=5&tree_size=5", "leaf_index=0&format=xml",
    f"aggregate_id={uuid.UUID(int=1)}", "version=1", "leaf_index=0&version=1",
    f"leaf_index={2**62}&format=tlog-proof", "leaf_index=0&tree_size=9&format=tlog-proof",
])
def test_bad_inclusion_requests_are_problems(api, query):
    response = api.get(f"/log/proof/inclusion?{query}", as_=None)
    assert 400 <= response.status_code < 500 and response.mimetype == PROBLEM, (query, response.status_code)


@pytest.mark.parametrize("query", ["", "old=abc", "old=-1", "old=5&new=2", f"old=0&new={2**62}", f"old={2**63}",
                                   "old=0&new=x"])
def test_bad_consistency_requests_are_problems(api, query):
    response = api.get(f"/log/proof/consistency?{query}", as_=None)
    assert 400 <= response.status_code < 500 and response.mimetype == PROBLEM, (query, response.status_code)


def test_leaf_hash_index_is_created_by_the_owner_only(ledger, env, ctx, database_url):
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    from ledger.bootstrap import build, transparency_log
    from ledger.hardening import harden
    from ledger.leafindex import ensure_leaf_hash_index

    owner_log = transparency_log(ledger, env)
    if not database_url.startswith("postgresql"):
        assert ensure_leaf_hash_index(owner_log) is False  # SQLite: no index, bounded lookups
        return
    role = f"app_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(database_url)
    app_env = {**env, "CASELEDGER_DATABASE_URL": urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}"))}
    admin = psycopg.connect(database_url.split("?")[0], autocommit=True)
    admin.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        ledger.register_customer(ctx(), kind="individual", tier="vip", contact={})
        harden(ledger.recorder, role)
        app = build(app_env)
        try:
            assert ensure_leaf_hash_index(transparency_log(app, app_env)) is False  # may not: bounded lookups
            assert ensure_leaf_hash_index(owner_log) is True  # the owner creates it ...
            assert ensure_leaf_hash_index(owner_log) is True  # ... once
            assert ensure_leaf_hash_index(transparency_log(app, app_env)) is True  # and the application uses it
        finally:
            app.close()
    finally:
        admin.execute(f'DROP OWNED BY "{role}"')
        admin.execute(f'DROP ROLE "{role}"')
        admin.close()
