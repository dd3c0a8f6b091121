// In-browser verification of an event's inclusion proof (RFC 9162) and of the signed checkpoint
// (C2SP signed-note, Ed25519) against a verifier key the user pinned in this browser (localStorage).
// Nothing here trusts the server: the leaf is hashed here, the path is folded here, and the
// signature is checked with WebCrypto against the pinned key.
"use strict";
(function () {
  const KEY_STORE = "caseledger.verifierKey";
  const section = document.getElementById("proof");
  if (!section) { return; }
  const result = document.getElementById("proof-result");
  const input = document.getElementById("verifier-key");
  const utf8 = new TextEncoder();

  function show(status, text) { result.dataset.status = status; result.textContent = text; }
  function b64(text) { return Uint8Array.from(atob(text), function (c) { return c.charCodeAt(0); }); }
  function hex(bytes) { return Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join(""); }
  function unhex(text) {
    if (!/^([0-9a-f]{2})*$/i.test(text)) { throw new Error("not hex: " + text); }
    return Uint8Array.from(text.match(/../g) || [], function (h) { return parseInt(h, 16); });
  }
  function concat() {
    const parts = Array.from(arguments), out = new Uint8Array(parts.reduce(function (n, p) { return n + p.length; }, 0));
    let at = 0; parts.forEach(function (p) { out.set(p, at); at += p.length; });
    return out;
  }
  async function sha256(bytes) { return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)); }
  function equal(a, b) { return a.length === b.length && a.every(function (x, i) { return x === b[i]; }); }

  // RFC 9162 §2.1.3.2: the root an inclusion proof leads to from a leaf hash.
  async function rootFrom(leafIndex, treeSize, leafHash, path) {
    if (leafIndex >= treeSize) { throw new Error("leaf index beyond the tree"); }
    let fn = leafIndex, sn = treeSize - 1, r = leafHash;
    for (const p of path) {
      if (sn === 0) { throw new Error("audit path too long"); }
      if (fn % 2 === 1 || fn === sn) {
        r = await sha256(concat(Uint8Array.of(1), p, r));
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      } else {
        r = await sha256(concat(Uint8Array.of(1), r, p));
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0) { throw new Error("audit path too short"); }
    return r;
  }

  // Signed-note verifier key: <name>+<key id, 8 hex>+<base64(0x01 || 32-byte Ed25519 key)>.
  async function parseKey(text) {
    // Split at the first two "+" only: the base64 key may contain "+" too.
    const trimmed = text.trim(), first = trimmed.indexOf("+"), second = trimmed.indexOf("+", first + 1);
    const parts = first < 0 || second < 0 ? [] : [trimmed.slice(0, first), trimmed.slice(first + 1, second), trimmed.slice(second + 1)];
    if (parts.length !== 3 || !parts[0] || !/^[0-9a-f]{8}$/i.test(parts[1])) { throw new Error("malformed verifier key"); }
    const raw = b64(parts[2]);
    if (raw.length !== 33 || raw[0] !== 1) { throw new Error("verifier key is not an Ed25519 key"); }
    const id = (await sha256(concat(utf8.encode(parts[0] + "\n"), raw))).slice(0, 4);
    if (hex(id) !== parts[1].toLowerCase()) { throw new Error("verifier key id does not match its name and key"); }
    const key = await crypto.subtle.importKey("raw", raw.slice(1), { name: "Ed25519" }, false, ["verify"]);
    return { name: parts[0], id: id, key: key };
  }

  // The note's text (what is signed) if one of its signatures is the pinned key's and verifies.
  async function openNote(note, pinned) {
    const split = note.lastIndexOf("\n\n");
    if (split < 0) { throw new Error("checkpoint has no signature block"); }
    const text = note.slice(0, split + 1);
    const lines = note.slice(split + 2).replace(/\n$/, "").split("\n");
    for (const line of lines) {
      const m = /^\u2014 (\S+) (\S+)$/.exec(line);
      if (!m || m[1] !== pinned.name) { continue; }
      const blob = b64(m[2]);
      if (blob.length !== 68 || !equal(blob.slice(0, 4), pinned.id)) { continue; }
      if (await crypto.subtle.verify({ name: "Ed25519" }, pinned.key, blob.slice(4), utf8.encode(text))) { return text; }
      throw new Error("the checkpoint's signature does not verify with the pinned key");
    }
    throw new Error("the checkpoint carries no signature by the pinned key " + pinned.name);
  }

  async function verify() {
    const keyText = localStorage.getItem(KEY_STORE);
    if (!keyText) { show("unpinned", "Pin the log's verifier key to verify this proof."); return; }
    input.value = keyText;
    show("running", "Verifying…");
    try {
      const response = await fetch(section.dataset.proofUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) { throw new Error("the proof could not be fetched (" + response.status + ")"); }
      const proof = await response.json();
      const pinned = await parseKey(keyText);
      const text = await openNote(proof.checkpoint, pinned);
      const body = text.split("\n");
      if (body[0] !== pinned.name) { throw new Error("the checkpoint is of another log: " + body[0]); }
      if (Number(body[1]) !== proof.tree_size) { throw new Error("the checkpoint is of another tree size"); }
      const leafHash = await sha256(concat(Uint8Array.of(0), b64(proof.leaf)));
      const root = await rootFrom(proof.leaf_index, proof.tree_size, leafHash, proof.proof.map(unhex));
      if (!equal(root, b64(body[2]))) { throw new Error("the leaf and audit path lead to another root than the signed one"); }
      show("verified", "Verified: leaf " + proof.leaf_index + " (SHA-256 " + hex(leafHash).slice(0, 16) +
        "…) is in the tree of " + proof.tree_size + " leaves signed by " + pinned.name + ".");
    } catch (error) {
      show("failed", "Failed: " + error.message);
    }
  }

  document.getElementById("pin").addEventListener("submit", function (event) {
    event.preventDefault();
    localStorage.setItem(KEY_STORE, input.value.trim());
    verify();
  });
  verify();
})();
