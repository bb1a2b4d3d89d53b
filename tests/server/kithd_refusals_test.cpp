// More bad input to a real kithd (kithd_bad_input_test.cpp has the first round): the order of
// authentication, pushes that are signed but not the pusher's to make, membership entries and
// envelopes that break a rule, a client that ignores RATE_LIMITED, and HTTP methods. Each gets
// its stable code, and nothing stored changes.
#include <map>

#include "kithd_test_fixture.hpp"
#include "support/raw_clients.hpp"

namespace kith::test {
namespace {

using kith::v1::ClientMessage;
using kith::v1::ErrorCode;

const sync::Section kNotes = sync::Section::parse("notes");
const sync::Section kHealth = sync::Section::parse("health");

ClientMessage ping(std::uint64_t request_id) {
  return message_with(request_id,
                      [](ClientMessage& m) { m.mutable_ping()->set_client_time_ms(1); });
}

ClientMessage hello(std::uint64_t request_id, const crypto::Bytes& certificate) {
  return message_with(request_id, [&](ClientMessage& m) {
    m.mutable_hello()->set_protocol_version(1);
    m.mutable_hello()->set_device_certificate(str(certificate));
  });
}

// The Authenticate a good client sends for `challenge` on `conn` (docs/PROTOCOL.md,
// "Authentication").
ClientMessage answer(std::uint64_t request_id, client::Connection& conn, const TestDevice& d,
                     const kith::v1::Challenge& challenge) {
  crypto::Bytes msg(challenge.nonce().begin(), challenge.nonce().end());
  const auto binding = conn.channel_binding();
  msg.insert(msg.end(), binding.begin(), binding.end());
  const auto key = d.secrets().device.signing.public_key().bytes();
  msg.insert(msg.end(), key.begin(), key.end());
  const auto sig = d.secrets().device.signing.sign(crypto::labels::kAuthChallenge, msg);
  return message_with(request_id, [&](ClientMessage& m) {
    m.mutable_authenticate()->set_signature(std::string(sig.begin(), sig.end()));
  });
}

kith::v1::ServerMessage exchange(client::Connection& conn, const ClientMessage& m) {
  conn.send(m);
  while (auto reply = conn.receive(5s)) {
    if (reply->request_id() == m.request_id()) return *reply;
  }
  ADD_FAILURE() << "no answer to request " << m.request_id();
  return {};
}

ClientMessage push_entry(const sync::PlanId& plan, const sync::MembershipEntry& e) {
  return message_with(0, [&](ClientMessage& m) {
    m.mutable_push_membership()->set_plan_id(str(plan.bytes()));
    m.mutable_push_membership()->add_entries(str(e.serialize()));
  });
}

ClientMessage push_envelope(const sync::PlanId& plan, const std::string& envelope) {
  return message_with(0, [&](ClientMessage& m) {
    m.mutable_push_envelopes()->set_plan_id(str(plan.bytes()));
    m.mutable_push_envelopes()->add_envelopes(envelope);
  });
}

// --- Authentication ----------------------------------------------------------------------------

TEST_F(KithdTest, AuthenticationStepsOutOfOrderAreRefused) {
  TestDevice d(dir.path(), "d");
  const auto cert = d.engine->identity().certificate.serialize();
  auto conn = server->connect();
  // Authenticate before any Hello.
  EXPECT_EQ(code_of(exchange(*conn, answer(1, *conn, d, kith::v1::Challenge{}))),
            ErrorCode::UNAUTHENTICATED);
  // A challenge is good for one answer: after a wrong one, the right one for it is refused too.
  auto challenge = exchange(*conn, hello(2, cert));
  ASSERT_TRUE(challenge.has_challenge()) << challenge.DebugString();
  auto wrong = answer(3, *conn, d, challenge.challenge());
  (*wrong.mutable_authenticate()->mutable_signature())[0] ^= 1;
  EXPECT_EQ(code_of(exchange(*conn, wrong)), ErrorCode::BAD_SIGNATURE);
  EXPECT_EQ(code_of(exchange(*conn, answer(4, *conn, d, challenge.challenge()))),
            ErrorCode::UNAUTHENTICATED);
  // A fresh Hello, answered right, authenticates.
  challenge = exchange(*conn, hello(5, cert));
  ASSERT_TRUE(challenge.has_challenge());
  ASSERT_TRUE(exchange(*conn, answer(6, *conn, d, challenge.challenge())).has_authenticated());
  // Once authenticated, neither step may be taken again; the session goes on.
  EXPECT_EQ(code_of(exchange(*conn, hello(7, cert))), ErrorCode::MALFORMED);
  EXPECT_EQ(code_of(exchange(*conn, answer(8, *conn, d, challenge.challenge()))),
            ErrorCode::MALFORMED);
  auto sub = exchange(*conn, message_with(9, [](ClientMessage& m) {
    m.mutable_subscribe()->set_plan_id(std::string(16, 'p'));
  }));
  EXPECT_EQ(code_of(sub), ErrorCode::NOT_MEMBER) << "the session lost its authentication";
}

TEST_F(KithdTest, CertificateThatDoesNotVerifyIsRefused) {
  TestDevice d(dir.path(), "d");
  auto cert = d.engine->identity().certificate.serialize();
  auto conn = server->connect();
  auto tampered = cert;
  tampered.back() ^= 1;  // in the identity key's signature
  EXPECT_EQ(code_of(exchange(*conn, hello(1, tampered))), ErrorCode::BAD_SIGNATURE);
  // One byte short: the decoder refuses it (read without matching the request id, see
  // FieldOfTheWrongSizeIsRefusedWithItsRequestId).
  conn->send(hello(2, crypto::Bytes(cert.begin(), cert.end() - 1)));
  auto short_reply = conn->receive(5s);
  ASSERT_TRUE(short_reply.has_value());
  EXPECT_EQ(code_of(*short_reply), ErrorCode::MALFORMED);
  EXPECT_NE(short_reply->error().message().find("169"), std::string::npos)
      << short_reply->error().message();
  EXPECT_EQ(code_of(exchange(*conn, hello(3, crypto::Bytes(cert.size(), 0x5a)))),
            ErrorCode::MALFORMED);
  // Nothing was half-accepted: the connection is still unauthenticated.
  EXPECT_EQ(code_of(exchange(*conn, answer(4, *conn, d, kith::v1::Challenge{}))),
            ErrorCode::UNAUTHENTICATED);
}

// docs/PROTOCOL.md: "A refused request gets an Error with the request's id". A message that
// parses but has a field of the wrong size, or over a limit, is such a request: its id is known.
TEST_F(KithdTest, FieldOfTheWrongSizeIsRefusedWithItsRequestId) {
  TestDevice d(dir.path(), "d");
  auto cert = d.engine->identity().certificate.serialize();
  auto conn = server->connect();
  cert.pop_back();
  auto reply = exchange(*conn, hello(41, cert));
  EXPECT_EQ(code_of(reply), ErrorCode::MALFORMED);
  auto long_name = hello(42, d.engine->identity().certificate.serialize());
  long_name.mutable_hello()->set_client_name(std::string(65, 'n'));
  EXPECT_EQ(code_of(exchange(*conn, long_name)), ErrorCode::TOO_LARGE);
}

// --- Ops ---------------------------------------------------------------------------------------

TEST_F(KithdTest, OpsTheDeviceMayNotPushAreRefused) {
  owner_with_plan();
  TestDevice nurse(dir.path(), "nurse");
  nurse.connect(*server);
  add_member(*owner, nurse, plan, {{kNotes, sync::Permission::kAppend, 0}});
  const std::size_t before = stored_ops();
  const auto epoch = owner->engine->membership(plan).epoch(kNotes);
  auto owners = forge(*owner);

  // Signed by the owner's device, pushed by the nurse's: only the author may push an op.
  auto reply = nurse.request(owners.push({owners.op("notes", 1, {}, epoch)}));
  EXPECT_EQ(code_of(reply), ErrorCode::FORBIDDEN);
  EXPECT_FALSE(reply.error().op_id().empty());
  EXPECT_EQ(reply.error().plan_id(), str(plan.bytes()));

  // An op naming another plan, in a push for this one.
  Forge elsewhere{sync::PlanId::random(), &owner->secrets(), owners.membership_index};
  auto other = elsewhere.push({elsewhere.op("notes", 1, {}, epoch)});
  other.mutable_push_ops()->set_plan_id(str(plan.bytes()));
  EXPECT_EQ(code_of(owner->request(other)), ErrorCode::MALFORMED);

  // Heads that do not match the ops: over another op at the same place, or of another plan.
  const auto op = owners.op("notes", 1, {}, epoch);
  auto mismatched = owners.push({op}, false);
  *mismatched.mutable_push_ops()->add_heads() = owners.head(owners.op("notes", 1, {}, epoch));
  EXPECT_EQ(code_of(owner->request(mismatched)), ErrorCode::BAD_HEAD);
  auto foreign_head = owners.push({op}, false);
  *foreign_head.mutable_push_ops()->add_heads() = elsewhere.head(op);
  EXPECT_EQ(code_of(owner->request(foreign_head)), ErrorCode::BAD_HEAD);

  EXPECT_EQ(stored_ops(), before);
  EXPECT_TRUE(owner->request(owners.push({op})).has_push_ack());  // the op itself is fine
}

// --- Membership entries ------------------------------------------------------------------------

TEST_F(KithdTest, MembershipEntryRetriesRacesAndStrangersAreTold) {
  owner_with_plan();
  TestDevice nurse(dir.path(), "nurse");
  nurse.connect(*server);
  add_member(*owner, nurse, plan, {{kNotes, sync::Permission::kRead, 0}});
  const sync::MembershipLog log = owner->engine->membership(plan);
  auto rotation = [&](const sync::Section& s) {
    auto e = log.next(sync::MembershipEntry::Kind::kKeyRotation, owner->device(), 5);
    e.section = s;
    e.epoch = log.epoch(s) + 1;
    e.sign(owner->secrets().device.signing);
    return e;
  };
  const auto entry = rotation(kHealth);

  // Pushed by a device other than the one that signed it.
  EXPECT_EQ(code_of(nurse.request(push_entry(plan, entry))), ErrorCode::FORBIDDEN);
  // Naming another plan.
  auto foreign = entry;
  foreign.plan = sync::PlanId::random();
  foreign.sign(owner->secrets().device.signing);
  EXPECT_EQ(code_of(owner->request(push_entry(plan, foreign))), ErrorCode::MALFORMED);
  // Accepted; the same bytes again are a retry, acknowledged with the same count.
  auto first = owner->request(push_entry(plan, entry));
  ASSERT_TRUE(first.has_push_ack()) << first.DebugString();
  EXPECT_EQ(first.push_ack().membership_count(), log.size() + 1);
  auto retry = owner->request(push_entry(plan, entry));
  ASSERT_TRUE(retry.has_push_ack()) << retry.DebugString();
  EXPECT_EQ(retry.push_ack().membership_count(), first.push_ack().membership_count());
  // Another entry for the place already taken lost a race.
  auto lost = owner->request(push_entry(plan, rotation(kNotes)));
  EXPECT_EQ(code_of(lost), ErrorCode::MEMBERSHIP_INVALID);
  EXPECT_NE(lost.error().message().find("already taken"), std::string::npos);
  EXPECT_EQ(raw_catch_up(*owner, plan, 0).entries.size(), log.size() + 1);
}

TEST_F(KithdTest, EntryThatCutsOffStoredOpsIsRefused) {
  owner_with_plan();
  TestDevice nurse(dir.path(), "nurse");
  nurse.connect(*server);
  add_member(*owner, nurse, plan, {{kNotes, sync::Permission::kAppend, 0}});
  auto f = forge(nurse);
  const auto note = f.op("notes", 1, {}, nurse.engine->membership(plan).epoch(kNotes));
  ASSERT_TRUE(nurse.request(f.push({note})).has_push_ack());

  // The owner revokes the nurse without having seen the note (no cut-off for it): every client
  // would then refuse an op the server already holds.
  const sync::MembershipLog log = owner->engine->membership(plan);
  auto revoke = log.next(sync::MembershipEntry::Kind::kRevoke, owner->device(), 5);
  revoke.member = nurse.account();
  revoke.section = kNotes;
  revoke.sign(owner->secrets().device.signing);
  auto reply = owner->request(push_entry(plan, revoke));
  EXPECT_EQ(code_of(reply), ErrorCode::MEMBERSHIP_INVALID);
  EXPECT_NE(reply.error().message().find("cuts off"), std::string::npos);
  // With the note as its cut-off, the same revocation is accepted.
  revoke.cutoffs = {{nurse.device(), kNotes, 1}};
  revoke.sign(owner->secrets().device.signing);
  reply = owner->request(push_entry(plan, revoke));
  EXPECT_TRUE(reply.has_push_ack()) << reply.DebugString();
}

// --- Envelopes ---------------------------------------------------------------------------------

TEST_F(KithdTest, EnvelopesThatBreakARuleAreRefused) {
  owner_with_plan();
  TestDevice nurse(dir.path(), "nurse");
  nurse.connect(*server);
  add_member(*owner, nurse, plan, {{kNotes, sync::Permission::kRead, 0}});
  const std::size_t envelopes = raw_catch_up(nurse, plan, 0).envelopes.size();
  const auto& to_nurse = nurse.secrets().device.encryption.public_key();
  auto envelope = [&](const sync::PlanId& p, const sync::Section& s,
                      const crypto::SigningKey& signer) {
    return str(crypto::Envelope::create(crypto::SectionKey::generate(),
                                        sync::section_key_context(p, s, 9), to_nurse, signer)
                   .serialize());
  };
  const auto& owner_key = owner->secrets().device.signing;

  EXPECT_EQ(code_of(owner->request(push_envelope(plan, std::string(200, 'e')))),
            ErrorCode::MALFORMED);
  EXPECT_EQ(code_of(owner->request(
                push_envelope(plan, envelope(sync::PlanId::random(), kNotes, owner_key)))),
            ErrorCode::MALFORMED);
  // Signed by the nurse's device but pushed by the owner's.
  EXPECT_EQ(code_of(owner->request(
                push_envelope(plan, envelope(plan, kNotes, nurse.secrets().device.signing)))),
            ErrorCode::BAD_SIGNATURE);
  // A reader may not hand out a section's key.
  EXPECT_EQ(code_of(nurse.request(
                push_envelope(plan, envelope(plan, kNotes, nurse.secrets().device.signing)))),
            ErrorCode::FORBIDDEN);
  // The key of a section the recipient may not read.
  EXPECT_EQ(code_of(owner->request(push_envelope(plan, envelope(plan, kHealth, owner_key)))),
            ErrorCode::FORBIDDEN);
  EXPECT_EQ(raw_catch_up(nurse, plan, 0).envelopes.size(), envelopes);
}

// --- Transport ---------------------------------------------------------------------------------

class StrictRateKithd : public KithdTest {
  KithdOptions options() override {
    KithdOptions o;
    o.args = {"--requests-per-second", "0.5", "--request-burst", "1"};
    return o;
  }
};

TEST_F(StrictRateKithd, ClientThatIgnoresRateLimitedIsDisconnected) {
  auto conn = server->connect();
  try {
    for (int i = 1; i <= 40; ++i) {
      conn->send(ping(i));
    }
  } catch (const client::TransportError&) {
    // The server may close before the last ones are sent.
  }
  int pongs = 0, limited = 0;
  EXPECT_THROW(
      {
        while (auto m = conn->receive(5s)) {
          pongs += m->has_pong();
          limited += m->has_error() && m->error().code() == ErrorCode::RATE_LIMITED;
        }
      },
      client::TransportError);
  EXPECT_GE(pongs, 1);
  EXPECT_GE(limited, 20);
  auto reason = conn->close_reason();
  ASSERT_TRUE(reason.has_value()) << "closed without a close frame";
  EXPECT_EQ(reason->code, 1008);
  EXPECT_TRUE(reason->reason.starts_with("RATE_LIMITED:")) << reason->reason;
  EXPECT_EQ(https_request(server->port(), server->ca_file(), "GET", "/healthz").status, 200);
}

// The Error that drops a request over the rate names it, so that a client with several requests
// in flight knows which one to send again after retry_after_ms.
TEST_F(StrictRateKithd, RateLimitedErrorNamesTheDroppedRequest) {
  auto conn = server->connect();
  conn->send(ping(1));
  conn->send(ping(2));  // over the burst of 1
  std::map<std::uint64_t, kith::v1::ServerMessage> replies;
  while (replies.size() < 2) {
    auto m = conn->receive(5s);
    ASSERT_TRUE(m.has_value()) << "answers: " << replies.size();
    replies[m->request_id()] = *m;
  }
  EXPECT_TRUE(replies[1].has_pong());
  ASSERT_TRUE(replies.count(2)) << "no reply names request 2";
  EXPECT_EQ(code_of(replies[2]), ErrorCode::RATE_LIMITED);
  EXPECT_GT(replies[2].error().retry_after_ms(), 0u);
}

TEST_F(KithdTest, OnlyGetIsServedOverHttps) {
  auto res = https_request(server->port(), server->ca_file(), "POST", "/healthz");
  EXPECT_EQ(res.status, 405);
  EXPECT_NE(res.body.find("METHOD_NOT_ALLOWED"), std::string::npos) << res.body;
  EXPECT_EQ(https_request(server->port(), server->ca_file(), "HEAD", "/healthz").status, 200);
}

TEST_F(KithdTest, UnsubscribedDeviceGetsNoLiveOps) {
  owner_with_plan();
  TestDevice nurse(dir.path(), "nurse");
  nurse.connect(*server);
  add_member(*owner, nurse, plan, {{kNotes, sync::Permission::kRead, 0}});
  auto f = forge(*owner);
  const auto epoch = owner->engine->membership(plan).epoch(kNotes);
  auto delivered = [&](std::chrono::milliseconds wait) {
    std::size_t n = 0;
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto m = nurse.conn->receive(50ms)) n += m->ops_batch().ops_size();
    }
    return n;
  };
  const auto first = f.op("notes", 1, {}, epoch);
  ASSERT_TRUE(owner->request(f.push({first})).has_push_ack());
  EXPECT_EQ(delivered(500ms), 1u) << "the subscribed nurse did not get the note live";
  // Unsubscribe has no answer; a Ping behind it shows it was handled.
  nurse.conn->send(message_with(nurse.next_request++, [&](ClientMessage& m) {
    m.mutable_unsubscribe()->set_plan_id(str(plan.bytes()));
  }));
  ASSERT_TRUE(nurse.request(ping(0)).has_pong());
  ASSERT_TRUE(owner->request(f.push({f.op("notes", 2, first.hash(), epoch)})).has_push_ack());
  EXPECT_EQ(delivered(1000ms), 0u) << "an unsubscribed device still got live ops";
}

}  // namespace
}  // namespace kith::test
