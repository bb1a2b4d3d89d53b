#!/usr/bin/python3
"""Writes Kith's own crypto test vectors (tests/vectors/*.json).

This is a second, independent implementation of the byte layouts in docs/PROTOCOL.md ("Crypto"),
written from the document rather than from the C++ code: BLAKE2b, the crypto_kdf derivation and
the recovery-key code come from Python's hashlib and plain Python; only Ed25519, X25519 sealed
boxes, XChaCha20-Poly1305 and Argon2id come from libsodium (through PyNaCl). The C++ tests check
kith_crypto against these files, so a client in another language can check against them too.

Run with Debian's python3-nacl:  /usr/bin/python3 tests/vectors/generate.py
Inputs are derived from fixed labels, so the output is stable except where the construction
itself is randomised (the ephemeral key inside a sealed box).
"""

import hashlib
import json
import os
import struct

import nacl.bindings as sodium
import nacl.signing

HERE = os.path.dirname(os.path.abspath(__file__))


def fixed(label, n=32):
    """Deterministic test input bytes (64-byte BLAKE2b blocks with a counter, cut to n)."""
    out = b""
    while len(out) < n:
        block = "kith test input %d: %s" % (len(out) // 64, label)
        out += hashlib.blake2b(block.encode(), digest_size=64).digest()
    return out[:n]


def hexs(b):
    return b.hex()


def write(name, source, cases, **extra):
    doc = {"source": source, "generator": "tests/vectors/generate.py", **extra, "cases": cases}
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


def u32(n):
    return struct.pack("<I", n)


def u64(n):
    return struct.pack("<Q", n)


# --- Labelled signatures ---------------------------------------------------------------------

LABELS = [
    "kith/v1/device-certificate",
    "kith/v1/envelope",
    "kith/v1/op-batch-head",
    "kith/v1/membership-entry",
    "kith/v1/auth-challenge",
    "kith/v1/invite-join",
]


def labelled(label, message):
    return bytes([len(label)]) + label.encode() + message


def sign(seed, label, message):
    return nacl.signing.SigningKey(seed).sign(labelled(label, message)).signature


def gen_signatures():
    cases = []
    for i, label in enumerate(LABELS):
        seed = fixed("signature seed %d" % i)
        message = b"" if i == 0 else fixed("signature message %d" % i, 16 * i)
        key = nacl.signing.SigningKey(seed)
        cases.append({
            "seed": hexs(seed),
            "public_key": hexs(bytes(key.verify_key)),
            "label": label,
            "message": hexs(message),
            "signed_bytes": hexs(labelled(label, message)),
            "signature": hexs(sign(seed, label, message)),
        })
    write("labelled_signatures.json", "docs/PROTOCOL.md, Crypto: Labelled signatures", cases)


# --- Sealed content (AEAD + key commitment) --------------------------------------------------


def kdf(master, subkey_id, context, n=32):
    """crypto_kdf_derive_from_key: BLAKE2b keyed with the master key, salt = u64le(id) || 0^8,
    personal = context || 0^8, empty message."""
    assert len(context) == 8
    return hashlib.blake2b(b"", digest_size=n, key=master, salt=u64(subkey_id) + bytes(8),
                           person=context.encode() + bytes(8)).digest()


def seal_content(key, nonce, plaintext, ad):
    enc_key = kdf(key, 1, "kithaead")
    commit_key = kdf(key, 2, "kithaead")
    ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, nonce, enc_key)
    commitment = hashlib.blake2b(nonce + u64(len(ad)) + ad + ct, digest_size=32,
                                 key=commit_key).digest()
    return enc_key, commit_key, commitment, nonce + commitment + ct


def gen_sealed_content():
    cases = []
    shapes = [(0, 0), (0, 40), (256, 96), (1000, 1)]
    for i, (pt_len, ad_len) in enumerate(shapes):
        key = fixed("section key %d" % i)
        nonce = fixed("nonce %d" % i, 24)
        plaintext = fixed("plaintext %d" % i, 64) * (pt_len // 64 + 1)
        plaintext = plaintext[:pt_len]
        ad = (fixed("ad %d" % i, 64) * 2)[:ad_len]
        enc_key, commit_key, commitment, sealed = seal_content(key, nonce, plaintext, ad)
        cases.append({
            "key": hexs(key), "encryption_subkey": hexs(enc_key),
            "commitment_subkey": hexs(commit_key), "nonce": hexs(nonce), "ad": hexs(ad),
            "plaintext": hexs(plaintext), "commitment": hexs(commitment), "sealed": hexs(sealed),
        })
    write("sealed_content.json", "docs/PROTOCOL.md, Crypto: Sealed content", cases)


# --- Envelopes --------------------------------------------------------------------------------


def gen_envelopes():
    cases = []
    for i, context in enumerate([b"", b"plan=p1;section=health;epoch=3", fixed("context", 64)]):
        sender_seed = fixed("envelope sender %d" % i)
        recipient_sk = fixed("envelope recipient %d" % i)
        recipient_pk = sodium.crypto_scalarmult_base(recipient_sk)
        section_key = fixed("envelope section key %d" % i)
        sealed = sodium.crypto_box_seal(section_key, recipient_pk)
        body = bytes([1]) + u32(len(context)) + context + recipient_pk + sealed
        signature = sign(sender_seed, "kith/v1/envelope", body)
        cases.append({
            "sender_seed": hexs(sender_seed),
            "sender_public_key": hexs(bytes(nacl.signing.SigningKey(sender_seed).verify_key)),
            "recipient_secret_key": hexs(recipient_sk), "recipient_public_key": hexs(recipient_pk),
            "context": hexs(context), "section_key": hexs(section_key),
            "signed_bytes": hexs(body), "envelope": hexs(body + signature),
        })
    write("envelopes.json", "docs/PROTOCOL.md, Crypto: Envelopes", cases)


# --- Device certificates and device secrets --------------------------------------------------


def gen_device_certificates():
    cases = []
    for i, issued_at in enumerate([0, 1795305600, 2**64 - 1]):
        identity_seed = fixed("identity %d" % i)
        device_seed = fixed("device signing %d" % i)
        device_box_sk = fixed("device box %d" % i)
        identity_pk = bytes(nacl.signing.SigningKey(identity_seed).verify_key)
        device_pk = bytes(nacl.signing.SigningKey(device_seed).verify_key)
        device_box_pk = sodium.crypto_scalarmult_base(device_box_sk)
        body = bytes([1]) + identity_pk + device_pk + device_box_pk + u64(issued_at)
        cert = body + sign(identity_seed, "kith/v1/device-certificate", body)
        cases.append({
            "identity_seed": hexs(identity_seed), "device_signing_seed": hexs(device_seed),
            "device_encryption_secret": hexs(device_box_sk), "issued_at": issued_at,
            "identity_public_key": hexs(identity_pk), "device_signing_public_key": hexs(device_pk),
            "device_encryption_public_key": hexs(device_box_pk), "certificate": hexs(cert),
            "device_secrets": hexs(bytes([1]) + identity_seed + device_seed + device_box_sk),
        })
    write("device_certificates.json", "docs/PROTOCOL.md, Crypto: Device certificates", cases)


# --- Recovery keys ----------------------------------------------------------------------------

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def gf32_mul(a, b):
    r = 0
    for _ in range(5):
        if b & 1:
            r ^= a
        b >>= 1
        a <<= 1
        if a & 0x20:
            a ^= 0x25
    return r


def group_check(group, data):
    c = group + 1
    weight = 1
    for d in data:
        weight = gf32_mul(weight, 2)
        c ^= gf32_mul(weight, d)
    return c


def recovery_text(secret):
    digest = hashlib.blake2b(b"kith/v1/recovery-checksum" + secret, digest_size=32).digest()
    checksum = (digest[0] << 4) | (digest[1] >> 4)
    bits = (int.from_bytes(secret, "big") << 12) | checksum
    symbols = [(bits >> (5 * (27 - s))) & 31 for s in range(28)]
    groups = []
    for g in range(7):
        data = symbols[4 * g:4 * g + 4]
        groups.append("".join(ALPHABET[d] for d in data) + ALPHABET[group_check(g, data)])
    return "-".join(groups)


def gen_recovery_keys():
    cases = []
    for i in range(4):
        secret = fixed("recovery %d" % i, 16) if i else bytes(16)
        seed = hashlib.blake2b(b"kith/v1/identity-seed", digest_size=32, key=secret).digest()
        text = recovery_text(secret)
        cases.append({
            "secret": hexs(secret), "text": text, "identity_seed": hexs(seed),
            "identity_public_key": hexs(bytes(nacl.signing.SigningKey(seed).verify_key)),
        })
        # The account's recovery box (docs/PROTOCOL.md, "Recovery envelopes").
        identity_pk = bytes(nacl.signing.SigningKey(seed).verify_key)
        box_sk = hashlib.blake2b(b"kith/v1/recovery-box", digest_size=32, key=seed).digest()
        box_pk = sodium.crypto_scalarmult_base(box_sk)
        cases[-1].update({
            "recovery_box_secret": hexs(box_sk), "recovery_box_public_key": hexs(box_pk),
            "recovery_box_signature": hexs(sign(seed, "kith/v1/recovery-box", identity_pk + box_pk)),
        })
    # Mistakes a person makes, and what the parser must say.
    good = cases[1]["text"]
    groups = good.split("-")

    def subst(text, pos):
        c = text[pos]
        return text[:pos] + ALPHABET[(ALPHABET.index(c) + 7) % 32] + text[pos + 1:]

    swapped = groups[:]
    swapped[2], swapped[4] = swapped[4], swapped[2]
    transposed = groups[:]
    g = transposed[5]
    transposed[5] = g[:1] + g[2] + g[1] + g[3:] if g[1] != g[2] else g[:2] + g[3] + g[2] + g[4:]
    invalid = [
        {"text": subst(good, 0), "error": "recovery_key_typo", "group": 1},
        {"text": subst(good, 6 * 2 + 3), "error": "recovery_key_typo", "group": 3},
        {"text": "-".join(transposed), "error": "recovery_key_typo", "group": 6},
        {"text": "-".join(swapped), "error": "recovery_key_typo", "group": 3},
        {"text": "-".join(groups[:6]), "error": "recovery_key_format", "group": 0},
        {"text": good.replace(groups[3], groups[3][:4]), "error": "recovery_key_format", "group": 4},
        {"text": good[:-1] + "U", "error": "recovery_key_format", "group": 0},
    ]
    write("recovery_keys.json", "docs/PROTOCOL.md, Crypto: Recovery key", cases, invalid=invalid)


# --- Safety numbers ---------------------------------------------------------------------------


def safety_half(pk):
    d = hashlib.blake2b(b"kith/v1/safety-number" + pk, digest_size=64).digest()
    return "".join("%05d" % (int.from_bytes(d[5 * c:5 * c + 5], "big") % 100000) for c in range(6))


def gen_safety_numbers():
    cases = []
    for i in range(3):
        a = bytes(nacl.signing.SigningKey(fixed("safety a %d" % i)).verify_key)
        b = bytes(nacl.signing.SigningKey(fixed("safety b %d" % i)).verify_key)
        x, y = safety_half(a), safety_half(b)
        digits = x + y if x < y else y + x
        cases.append({"key_a": hexs(a), "key_b": hexs(b), "half_a": x, "half_b": y,
                      "safety_number": " ".join(digits[i:i + 5] for i in range(0, 60, 5))})
    write("safety_numbers.json", "docs/PROTOCOL.md, Crypto: Safety numbers", cases)


# --- Key files --------------------------------------------------------------------------------


def key_file(payload, passphrase, opslimit, memlimit, salt, nonce):
    header = (b"KITHKEYS" + bytes([1, 2]) + u64(opslimit) + u64(memlimit) + salt + nonce
              + u32(len(payload) + 16))
    key = sodium.crypto_pwhash_alg(32, passphrase.encode(), salt, opslimit, memlimit,
                                   sodium.crypto_pwhash_ALG_ARGON2ID13)
    body = header + sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(payload, header, nonce, key)
    return body + hashlib.blake2b(body, digest_size=32).digest()


def gen_key_files():
    cases = []
    for i, (passphrase, payload_len) in enumerate([("correct horse battery staple", 97),
                                                   ("pässwörd ✓", 1)]):
        payload = fixed("key file payload %d" % i, 64)
        payload = (payload * 2)[:payload_len]
        salt, nonce = fixed("salt %d" % i, 16), fixed("key file nonce %d" % i, 24)
        ops, mem = 1, 8192  # libsodium's minimum, so the tests run fast
        cases.append({"passphrase": passphrase, "payload": hexs(payload), "opslimit": ops,
                      "memlimit": mem, "salt": hexs(salt), "nonce": hexs(nonce),
                      "file": hexs(key_file(payload, passphrase, ops, mem, salt, nonce))})
    write("key_files.json", "docs/PROTOCOL.md, Crypto: Key files", cases)


# --- Sync: ops, chain heads, membership entries (docs/PROTOCOL.md, "Sync") ------------------


def section_bytes(name):
    return bytes([len(name)]) + name.encode()


def op_header(plan, op_id, section, epoch, author, seq, prev, wall, counter, membership_index):
    return (bytes([1]) + plan + op_id + section_bytes(section) + u64(epoch) + author + u64(seq)
            + prev + u64(wall) + u32(counter) + u64(membership_index))


def op_body(mutations):
    out = bytes([1]) + u32(len(mutations))
    for m in mutations:
        if m["kind"] == "create":
            out += bytes([1]) + bytes.fromhex(m["record"]) + u32(len(m["type"])) + m["type"].encode()
        else:
            value = m["value"].encode()
            out += (bytes([2]) + bytes.fromhex(m["record"]) + u32(len(m["field"])) + m["field"].encode()
                    + u32(len(value)) + value + u32(len(m["seen"])))
            for op, index in m["seen"]:
                out += bytes.fromhex(op) + struct.pack("<H", index)
    return out


def op_hash(header, body):
    return hashlib.blake2b(u32(len(header)) + header + body, digest_size=32).digest()


def chain_head(plan, section, author, seq, h):
    return bytes([1]) + plan + section_bytes(section) + author + u64(seq) + h


def gen_ops():
    plan = fixed("plan", 16)
    device_seed = fixed("op author")
    author = bytes(nacl.signing.SigningKey(device_seed).verify_key)
    key = fixed("health epoch 2 key")
    record = fixed("record", 16).hex()
    cases = []
    prev = bytes(32)
    for seq in (1, 2):
        op_id = fixed("op id %d" % seq, 16)
        header = op_header(plan, op_id, "health", 2, author, seq, prev, 1795305600000 + seq, seq,
                           3)
        if seq == 1:
            mutations = [{"kind": "create", "record": record, "type": "health"},
                         {"kind": "set", "record": record, "field": "dose", "value": "5 mg",
                          "seen": []}]
        else:
            mutations = [{"kind": "set", "record": record, "field": "dose", "value": "10 mg ✓",
                          "seen": [[fixed("op id 1", 16).hex(), 1]]}]
        body = op_body(mutations)
        nonce = fixed("op nonce %d" % seq, 24)
        _, _, _, sealed = seal_content(key, nonce, body, header)
        h = op_hash(header, sealed)
        cases.append({"plan": plan.hex(), "op_id": op_id.hex(), "section": "health", "epoch": 2,
                      "author": author.hex(), "author_seq": seq, "prev": prev.hex(),
                      "clock": "%d.%d" % (1795305600000 + seq, seq), "membership_index": 3,
                      "header": header.hex(), "mutations": mutations, "body": body.hex(),
                      "sealed_body": sealed.hex(), "hash": h.hex()})
        prev = h
    head = chain_head(plan, "health", author, 2, prev)
    signed = {"head": head.hex(),
              "signature": sign(device_seed, "kith/v1/op-batch-head", head).hex()}
    write("ops.json", "docs/PROTOCOL.md, Sync: Ops, Chains and heads", cases,
          section_key=key.hex(), author_seed=device_seed.hex(), signed_head=signed)


def certificate(identity_seed, device_seed, box_sk, issued_at):
    identity_pk = bytes(nacl.signing.SigningKey(identity_seed).verify_key)
    device_pk = bytes(nacl.signing.SigningKey(device_seed).verify_key)
    body = (bytes([1]) + identity_pk + device_pk + sodium.crypto_scalarmult_base(box_sk)
            + u64(issued_at))
    return body + sign(identity_seed, "kith/v1/device-certificate", body)


def gen_membership():
    plan = fixed("membership plan", 16)
    owner_id, owner_dev = fixed("owner identity"), fixed("owner device")
    nurse_id, nurse_dev = fixed("nurse identity"), fixed("nurse device")
    owner_cert = certificate(owner_id, owner_dev, fixed("owner box"), 100)
    nurse_cert = certificate(nurse_id, nurse_dev, fixed("nurse box"), 200)
    owner_dev_pk = bytes(nacl.signing.SigningKey(owner_dev).verify_key)
    nurse_dev_pk = bytes(nacl.signing.SigningKey(nurse_dev).verify_key)
    nurse_account = bytes(nacl.signing.SigningKey(nurse_id).verify_key)
    invite_secret = fixed("invite secret")
    invite_seed = hashlib.blake2b(b"kith/v1/invite-key", digest_size=32, key=invite_secret).digest()
    invite_pk = bytes(nacl.signing.SigningKey(invite_seed).verify_key)
    invite_id = fixed("invite id", 16)

    entries = []
    prev = bytes(32)

    def entry(index, author_seed, at, kind, payload, note):
        nonlocal prev
        author = bytes(nacl.signing.SigningKey(author_seed).verify_key)
        body = bytes([1]) + plan + u64(index) + prev + author + u64(at) + bytes([kind]) + payload
        full = body + sign(author_seed, "kith/v1/membership-entry", body)
        entries.append({"note": note, "kind": kind, "body": body.hex(), "entry": full.hex(),
                        "hash": hashlib.blake2b(full, digest_size=32).digest().hex()})
        prev = hashlib.blake2b(full, digest_size=32).digest()

    def grant(section, perm, expires):
        return section_bytes(section) + bytes([perm]) + u64(expires)

    def cutoffs(items):
        out = u32(len(items))
        for device, section, seq in items:
            out += device + section_bytes(section) + u64(seq)
        return out

    entry(0, owner_dev, 1000, 1, u32(len(owner_cert)) + owner_cert, "plan created")
    entry(1, owner_dev, 1001, 3,
          invite_id + u32(32) + invite_pk + u64(999999) + u32(2)
          + grant("health", 3, 0) + grant("notes", 2, 5000), "invite: health write, notes append")
    join_msg = plan + invite_id + nurse_cert
    entry(2, nurse_dev, 1002, 4,
          invite_id + u32(len(nurse_cert)) + nurse_cert
          + sign(invite_seed, "kith/v1/invite-join", join_msg), "nurse joins")
    entry(3, owner_dev, 1003, 5,
          nurse_account + grant("risk", 1, 0) + cutoffs([]), "grant risk read")
    entry(4, owner_dev, 1004, 7,
          section_bytes("health") + u64(2) + cutoffs([(nurse_dev_pk, "health", 7)]),
          "rotate health to epoch 2")
    entry(5, owner_dev, 1005, 6,
          nurse_account + bytes([0]) + cutoffs([(nurse_dev_pk, "health", 9)]), "revoke nurse")
    context = b"kith/v1/section-key" + plan + section_bytes("health") + u64(2)
    write("membership.json", "docs/PROTOCOL.md, Sync: Membership log", entries,
          plan=plan.hex(), owner_device=owner_dev_pk.hex(), nurse_device=nurse_dev_pk.hex(),
          nurse_account=nurse_account.hex(), invite_secret=invite_secret.hex(),
          section_key_context=context.hex())


# --- Server: section checksums (docs/PROTOCOL.md, "Section checksums") ----------------------


def next_section_digest(previous, h):
    label = b"kith/v1/section-digest"
    return hashlib.blake2b(bytes([len(label)]) + label + previous + h, digest_size=32).digest()


def gen_section_digests():
    """Ops of a plan in server order; per section, the running digest and the final checksum."""
    plans = [("one op", ["health"]),
             ("three sections interleaved in server order",
              ["health", "notes", "health", "risk", "health", "notes"])]
    cases = []
    for n, (note, sections) in enumerate(plans):
        digests, counts, ops = {}, {}, []
        for seq, section in enumerate(sections, start=1):
            h = fixed("section digest case %d op %d" % (n, seq))
            digests[section] = next_section_digest(digests.get(section, bytes(32)), h)
            counts[section] = counts.get(section, 0) + 1
            ops.append({"server_seq": seq, "section": section, "op_hash": h.hex(),
                        "digest": digests[section].hex()})
        checksums = [{"section": s, "op_count": counts[s], "digest": digests[s].hex()}
                     for s in sorted(digests)]
        cases.append({"note": note, "ops": ops, "checksums": checksums})
    write("section_digests.json", "docs/PROTOCOL.md, Server: Section checksums", cases,
          empty_digest=bytes(32).hex())


if __name__ == "__main__":
    gen_signatures()
    gen_sealed_content()
    gen_envelopes()
    gen_device_certificates()
    gen_recovery_keys()
    gen_safety_numbers()
    gen_key_files()
    gen_ops()
    gen_membership()
    gen_section_digests()
