"""The pure integrity core of caseledger's transparency log.

Every stored event becomes one leaf of an append-only RFC 9162 (RFC 6962) Merkle tree. The log
periodically signs a checkpoint (tree size + root hash + time) as a C2SP signed note. Anyone
holding the log's public key can then check, without any other secret and without trusting the
database, that:

* every event is in the tree exactly once, in order, unaltered (full replay: ``verifier``);
* a single exported event is in a signed tree (inclusion proof: ``merkle``, ``verifier``);
* a later checkpoint extends an earlier one, so history was never rewritten (consistency proof).

The modules here use only the standard library and ``cryptography`` (Ed25519). They hold no
database, web or application code, so an auditor can read and re-implement them:

``merkle``      hashing, the compact "frontier" used to append, proofs and their verification
``leaf``        the canonical, byte-exact encoding of one event as a leaf
``checkpoint``  signed checkpoints (c2sp.org/tlog-checkpoint inside c2sp.org/signed-note)
``verifier``    replay of the whole log against the signed checkpoints
"""
