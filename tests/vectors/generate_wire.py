#!/usr/bin/python3
# Run: python3 tests/vectors/generate_wire.py (needs protoc, from protobuf-compiler).
# Builds tests/vectors/wire_messages.json: each message in protobuf text format, encoded by
# protoc --encode (an encoder independent of the C++ runtime code under test), plus the proto3
# canonical JSON form of the same message.
import base64, json, subprocess, sys

import os
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
certs = json.load(open(f"{ROOT}/tests/vectors/device_certificates.json"))
CERT = bytes.fromhex(certs["cases"][0]["certificate"])
assert len(CERT) == 169

def pat(start, n):
    return bytes((start + i) & 0xFF for i in range(n))

PLAN = pat(0x00, 16)
OP1 = pat(0x10, 16)
OP2 = pat(0x20, 16)
ACCOUNT = pat(0xA0, 32)
DEVICE = pat(0xC0, 32)
SIG = pat(0x40, 64)
NONCE = pat(0xE0, 32)
DIGEST1 = pat(0x60, 32)
DIGEST2 = pat(0x80, 32)

# A message is a list of (field, value) where value is int, bool, str, bytes, enum (E), or a
# nested list; a repeated field appears several times.
class E(str):
    pass

def text(msg, indent=0):
    out = []
    pad = "  " * indent
    for k, v in msg:
        if isinstance(v, list):
            out.append(f"{pad}{k} {{")
            out.append(text(v, indent + 1))
            out.append(f"{pad}}}")
        elif isinstance(v, bool):
            out.append(f"{pad}{k}: {'true' if v else 'false'}")
        elif isinstance(v, E):
            out.append(f"{pad}{k}: {v}")
        elif isinstance(v, int):
            out.append(f"{pad}{k}: {v}")
        elif isinstance(v, bytes):
            out.append(f'{pad}{k}: "' + "".join(f"\\x{b:02x}" for b in v) + '"')
        elif isinstance(v, str):
            out.append(f"{pad}{k}: {json.dumps(v)}")
    return "\n".join(x for x in out if x)

REPEATED = {"ops", "heads", "acked", "checksums", "entries", "envelopes", "plans"}
U64 = {"request_id", "cursor", "membership_count", "server_seq", "up_to_seq", "server_time_ms",
       "op_count", "after", "at_ms", "next_after", "client_time_ms", "retry_after_ms", "first_index",
       "created_at_ms", "expires_at_ms"}

def camel(k):
    p = k.split("_")
    return p[0] + "".join(x.title() for x in p[1:])

def to_json(msg):
    out = {}
    for k, v in msg:
        if isinstance(v, list):
            jv = to_json(v)
        elif isinstance(v, bool) or isinstance(v, E):
            jv = v if isinstance(v, bool) else str(v)
        elif isinstance(v, int):
            jv = str(v) if k in U64 else v
        elif isinstance(v, bytes):
            jv = base64.b64encode(v).decode()
        else:
            jv = v
        if k in REPEATED or (k == "entries"):
            out.setdefault(camel(k), []).append(jv)
        else:
            out[camel(k)] = jv
    return out

def op(header, body):
    return [("header", header), ("body", body)]

cases = [
  ("client_hello", "ClientMessage", "The first message on a connection.",
   [("request_id", 1), ("hello", [("protocol_version", 1), ("device_certificate", CERT),
                                  ("client_name", "Kith CLI 0.1")])]),
  ("client_authenticate", "ClientMessage", "The signed answer to a challenge (the signature is a fixed pattern here).",
   [("request_id", 2), ("authenticate", [("signature", SIG)])]),
  ("client_subscribe", "ClientMessage", "Subscribe with a cursor and a membership count.",
   [("request_id", 3), ("subscribe", [("plan_id", PLAN), ("cursor", 42), ("membership_count", 3)])]),
  ("client_push_ops", "ClientMessage", "Two ops and the head that covers them.",
   [("request_id", 4), ("push_ops", [("plan_id", PLAN),
                                    ("ops", op(b"header-1", b"sealed-body-1")),
                                    ("ops", op(b"header-2", b"sealed-body-2")),
                                    ("heads", [("head", b"head-a"), ("signature", SIG)])])]),
  ("client_push_membership", "ClientMessage", "One membership-log entry.",
   [("request_id", 5), ("push_membership", [("plan_id", PLAN), ("entries", b"membership-entry-0")])]),
  ("client_fetch_log", "ClientMessage", "The second page of a plan's fetch log.",
   [("request_id", 6), ("fetch_log", [("plan_id", PLAN), ("after", 100), ("limit", 50)])]),
  ("client_list_plans", "ClientMessage", "The second page of the account's plans, two per page.",
   [("request_id", 7), ("list_plans", [("after_plan_id", PLAN), ("limit", 2)])]),
  ("client_ping_empty", "ClientMessage", "A Ping with every field at its default: only the body's tag and a zero length are sent.",
   [("ping", [])]),
  ("server_challenge", "ServerMessage", "The server's answer to Hello.",
   [("request_id", 1), ("challenge", [("nonce", NONCE), ("server_time_ms", 1700000000000)])]),
  ("server_push_ack", "ServerMessage", "Both ops of client_push_ops stored.",
   [("request_id", 4), ("push_ack", [("plan_id", PLAN),
                                    ("acked", [("op_id", OP1), ("server_seq", 43)]),
                                    ("acked", [("op_id", OP2), ("server_seq", 44)])])]),
  ("server_ops_batch_live", "ServerMessage", "A live batch (request_id 0) with one op, a head, and more to come.",
   [("ops_batch", [("plan_id", PLAN),
                   ("ops", [("server_seq", 45), ("op", op(b"header-3", b"sealed-body-3"))]),
                   ("heads", [("head", b"head-b"), ("signature", SIG)]),
                   ("up_to_seq", 46), ("more", True)])]),
  ("server_membership_batch", "ServerMessage", "Membership entries from index 3.",
   [("request_id", 3), ("membership_batch", [("plan_id", PLAN), ("first_index", 3),
                                            ("entries", b"membership-entry-3"),
                                            ("entries", b"membership-entry-4")])]),
  ("server_catch_up_complete", "ServerMessage", "The end of a catch-up, with two section checksums.",
   [("request_id", 3), ("catch_up_complete", [("plan_id", PLAN), ("server_seq", 46),
                                             ("checksums", [("section", "profile"), ("op_count", 12), ("digest", DIGEST1)]),
                                             ("checksums", [("section", "risk"), ("op_count", 3), ("digest", DIGEST2)])])]),
  ("server_access_log", "ServerMessage", "One fetch-log entry and the cursor for the next page.",
   [("request_id", 6), ("access_log", [("plan_id", PLAN),
                                      ("entries", [("account_id", ACCOUNT), ("device_id", DEVICE),
                                                   ("section", "health"), ("up_to_seq", 44),
                                                   ("at_ms", 1700000123456), ("kind", E("LIVE"))]),
                                      ("next_after", 101), ("more", False)])]),
  ("server_plan_list", "ServerMessage", "A plan the account owns and one whose access has expired; no more pages.",
   [("request_id", 7), ("plan_list", [("plans", [("plan_id", OP1), ("owner", True), ("owner_account_id", ACCOUNT),
                                                 ("created_at_ms", 1700000000000)]),
                                      ("plans", [("plan_id", OP2), ("owner_account_id", DEVICE),
                                                 ("created_at_ms", 1700000000001),
                                                 ("expires_at_ms", 1700000999999), ("expired", True)])])]),
  ("server_error_chain_gap", "ServerMessage", "A refused push, naming the op and the plan.",
   [("request_id", 4), ("error", [("code", E("CHAIN_GAP")),
                                 ("message", "op 1011121314151617 skips chain position 7; push the ops before it first"),
                                 ("op_id", OP1), ("plan_id", PLAN)])]),
  ("server_error_busy", "ServerMessage", "A retry hint, sent unprompted (request_id 0).",
   [("error", [("code", E("SERVER_BUSY")), ("message", "the server is busy; try again in 2 seconds"),
               ("retry_after_ms", 2000)])]),
]

out = []
for name, typ, what, msg in cases:
    t = text(msg)
    enc = subprocess.run(["protoc", f"--encode=kith.v1.{typ}", "-I", f"{ROOT}/sync/proto",
                          "kith/v1/sync.proto"], input=t.encode(), capture_output=True, check=True).stdout
    out.append({"name": name, "type": f"kith.v1.{typ}", "comment": what, "text": t,
                "json": to_json(msg), "hex": enc.hex()})

doc = {
  "source": "docs/PROTOCOL.md, Sync wire messages; schema sync/proto/kith/v1/sync.proto",
  "generator": "protoc 3.21.12: `protoc --encode=<type> -I sync/proto kith/v1/sync.proto` on each case's `text` (protobuf text format); `json` is the same message in the proto3 JSON mapping",
  "note": "ids, nonces, signatures and digests are fixed byte patterns, not real keys or signatures: the wire layer does not verify them. `hex` is the deterministic encoding every encoder must produce for the message: fields in number order, default values omitted.",
  "cases": out,
}
out = sys.argv[1] if len(sys.argv) > 1 else f"{ROOT}/tests/vectors/wire_messages.json"
json.dump(doc, open(out, "w"), indent=2)
open(out, "a").write("\n")
