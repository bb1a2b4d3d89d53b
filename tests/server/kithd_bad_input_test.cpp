// Bad input to a real kithd over TLS on loopback: each kind gets a stable error code and a
// sentence, the connection (or at least the server) keeps serving, and nothing stored changes.
#include <thread>

#include "kithd_test_fixture.hpp"
#include "support/raw_clients.hpp"

namespace kith::test {
namespace {

using kith::v1::ClientMessage;
using kith::v1::ErrorCode;

TEST_F(KithdTest, PlainTcpGetsATlsRequiredAnswer) {
  auto reply = tcp_exchange(server->port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 5s);
  EXPECT_NE(reply.received.find("400"), std::string::npos) << reply.received;
  EXPECT_NE(reply.received.find("TLS_REQUIRED"), std::string::npos) << reply.received;
  EXPECT_EQ(https_request(server->port(), server->ca_file(), "GET", "/healthz").status, 200);
}

TEST_F(KithdTest, HealthAndMetricsOverHttps) {
  auto health = https_request(server->port(), server->ca_file(), "GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  owner_with_plan();
  auto metrics = https_request(server->port(), server->ca_file(), "GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("kithd_connections 1"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("kithd_ops_accepted_total 1"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("kithd_commit_seconds_bucket"), std::string::npos);
}

TEST_F(KithdTest, SyncPathWithoutWebSocketIsRefused) {
  auto res = https_request(server->port(), server->ca_file(), "GET", "/v1/sync");
  EXPECT_EQ(res.status, 426);
  EXPECT_NE(res.body.find("WEBSOCKET_REQUIRED"), std::string::npos);
}

TEST_F(KithdTest, WrongPathIsNotFound) {
  auto res = https_request(server->port(), server->ca_file(), "GET", "/v2/sync");
  EXPECT_EQ(res.status, 404);
  EXPECT_NE(res.body.find("NOT_FOUND"), std::string::npos);
  auto endpoint = server->endpoint();
  endpoint.path = "/v2/sync";
  EXPECT_THROW(client::Connection::open(endpoint, server->tls_options()), client::TransportError);
}

TEST_F(KithdTest, OversizedFrameClosesWithMessageTooBig) {
  auto conn = server->connect();
  conn->send_binary(crypto::Bytes(1024 * 1024 + 1, 0x0a));
  EXPECT_THROW(
      {
        while (conn->receive_raw(5s)) {
        }
      },
      client::TransportError);
  auto reason = conn->close_reason();
  ASSERT_TRUE(reason.has_value());
  EXPECT_EQ(reason->code, 1009);
  EXPECT_EQ(https_request(server->port(), server->ca_file(), "GET", "/healthz").status, 200);
}

TEST_F(KithdTest, TextFrameIsMalformedAndTheConnectionGoesOn) {
  auto conn = server->connect();
  conn->send_text("{\"hello\": 1}");
  auto reply = conn->receive(5s);
  ASSERT_TRUE(reply);
  EXPECT_EQ(code_of(*reply), ErrorCode::MALFORMED);
  EXPECT_NE(reply->error().message().find("binary"), std::string::npos);
  conn->send(message_with(7, [](ClientMessage& m) { m.mutable_ping()->set_client_time_ms(5); }));
  auto pong = conn->receive(5s);
  ASSERT_TRUE(pong && pong->has_pong());
  EXPECT_EQ(pong->pong().client_time_ms(), 5u);
}

TEST_F(KithdTest, GarbageAndUnknownMessagesAreMalformed) {
  auto conn = server->connect();
  conn->send_binary(crypto::Bytes{0xff, 0xff, 0xff, 0x01});
  auto reply = conn->receive(5s);
  ASSERT_TRUE(reply);
  EXPECT_EQ(code_of(*reply), ErrorCode::MALFORMED);
  // request_id 1 and an unknown field 99 (length-delimited): a kind this version does not know.
  conn->send_binary(crypto::Bytes{0x08, 0x01, 0x9a, 0x06, 0x00});
  reply = conn->receive(5s);
  ASSERT_TRUE(reply);
  EXPECT_EQ(code_of(*reply), ErrorCode::MALFORMED);
}

TEST_F(KithdTest, PushBeforeAuthenticationIsRefused) {
  auto conn = server->connect();
  conn->send(message_with(3, [](ClientMessage& m) {
    m.mutable_push_ops()->set_plan_id(std::string(16, 'p'));
  }));
  auto reply = conn->receive(5s);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->request_id(), 3u);
  EXPECT_EQ(code_of(*reply), ErrorCode::UNAUTHENTICATED);
}

TEST_F(KithdTest, BadChallengeSignatureIsRefused) {
  TestDevice mallory(dir.path(), "mallory");
  auto conn = server->connect();
  conn->send(message_with(1, [&](ClientMessage& m) {
    m.mutable_hello()->set_protocol_version(1);
    m.mutable_hello()->set_device_certificate(
        str(mallory.engine->identity().certificate.serialize()));
  }));
  auto challenge = conn->receive(5s);
  ASSERT_TRUE(challenge && challenge->has_challenge());
  // Signed without the TLS channel binding: a relayed answer must not pass.
  crypto::Bytes msg(challenge->challenge().nonce().begin(), challenge->challenge().nonce().end());
  auto key = mallory.secrets().device.signing.public_key().bytes();
  msg.insert(msg.end(), key.begin(), key.end());
  auto sig = mallory.secrets().device.signing.sign(crypto::labels::kAuthChallenge, msg);
  conn->send(message_with(2, [&](ClientMessage& m) {
    m.mutable_authenticate()->set_signature(std::string(sig.begin(), sig.end()));
  }));
  auto reply = conn->receive(5s);
  ASSERT_TRUE(reply);
  EXPECT_EQ(code_of(*reply), ErrorCode::BAD_SIGNATURE);
  conn->send(message_with(3, [](ClientMessage& m) {
    m.mutable_subscribe()->set_plan_id(std::string(16, 'p'));
  }));
  reply = conn->receive(5s);
  ASSERT_TRUE(reply);
  EXPECT_EQ(code_of(*reply), ErrorCode::UNAUTHENTICATED);
}

TEST_F(KithdTest, UnsupportedProtocolVersion) {
  TestDevice d(dir.path(), "d");
  auto conn = server->connect();
  conn->send(message_with(1, [&](ClientMessage& m) {
    m.mutable_hello()->set_protocol_version(9);
    m.mutable_hello()->set_device_certificate(str(d.engine->identity().certificate.serialize()));
  }));
  auto reply = conn->receive(5s);
  ASSERT_TRUE(reply);
  EXPECT_EQ(code_of(*reply), ErrorCode::UNSUPPORTED_VERSION);
}

TEST_F(KithdTest, OpForAPlanTheDeviceIsNotInIsRefused) {
  owner_with_plan();
  const std::size_t before = stored_ops();
  TestDevice stranger(dir.path(), "stranger");
  stranger.connect(*server);
  Forge f{plan, &stranger.secrets(), 1};
  auto reply = stranger.request(f.push({f.op("notes", 1, {})}));
  EXPECT_EQ(code_of(reply), ErrorCode::NOT_MEMBER);
  EXPECT_EQ(stored_ops(), before);
}

TEST_F(KithdTest, OpOnASectionWithoutTheRightIsRefused) {
  owner_with_plan();
  TestDevice provider(dir.path(), "provider");
  provider.connect(*server);
  add_member(*owner, provider, plan,
             {{sync::Section::parse("activity"), sync::Permission::kAppend, 0}});
  const std::size_t before = stored_ops();
  auto f = forge(provider);
  auto reply = provider.request(f.push({f.op("health", 1, {})}));
  EXPECT_EQ(code_of(reply), ErrorCode::FORBIDDEN);
  EXPECT_FALSE(reply.error().op_id().empty());
  // The section they were granted works.
  auto ok = provider.request(f.push({f.op("activity", 1, {}, 2)}));
  EXPECT_TRUE(ok.has_push_ack()) << ok.DebugString();
  EXPECT_EQ(stored_ops(), before + 1);
}

TEST_F(KithdTest, OpUnderARetiredEpochIsRefused) {
  owner_with_plan();
  owner->engine->rotate_key(plan, sync::Section::parse("notes"));
  ASSERT_TRUE(owner->sync(plan).empty());
  const std::size_t before = stored_ops();
  auto f = forge(*owner);
  auto reply = owner->request(f.push({f.op("notes", 1, {}, /*epoch=*/1)}));
  EXPECT_EQ(code_of(reply), ErrorCode::RETIRED_EPOCH);
  EXPECT_EQ(stored_ops(), before);
}

TEST_F(KithdTest, ChainGapForkAndBadHeadsAreRefused) {
  owner_with_plan();
  auto f = forge(*owner);
  const std::size_t before = stored_ops();
  auto first = f.op("risk", 1, {});
  auto second = f.op("risk", 2, first.hash());
  // A gap: op 2 without op 1.
  EXPECT_EQ(code_of(owner->request(f.push({second}))), ErrorCode::CHAIN_GAP);
  // No head covering the ops.
  EXPECT_EQ(code_of(owner->request(f.push({first}, false))), ErrorCode::BAD_HEAD);
  // A head whose signature does not verify.
  auto bad = f.push({first});
  (*bad.mutable_push_ops()->mutable_heads(0)->mutable_signature())[3] ^= 1;
  EXPECT_EQ(code_of(owner->request(bad)), ErrorCode::BAD_SIGNATURE);
  EXPECT_EQ(stored_ops(), before);
  // Now op 1 properly, then a different op claiming place 1: a fork.
  ASSERT_TRUE(owner->request(f.push({first})).has_push_ack());
  EXPECT_EQ(code_of(owner->request(f.push({f.op("risk", 1, {})}))), ErrorCode::CHAIN_FORK);
  EXPECT_EQ(stored_ops(), before + 1);
}

TEST_F(KithdTest, ReplayedOpIsAcknowledgedAgainNotStoredTwice) {
  owner_with_plan();
  auto f = forge(*owner);
  auto push = f.push({f.op("risk", 1, {})});
  auto first = owner->request(push);
  ASSERT_TRUE(first.has_push_ack()) << first.DebugString();
  push.set_request_id(0);
  auto again = owner->request(push);
  ASSERT_TRUE(again.has_push_ack()) << again.DebugString();
  EXPECT_EQ(again.push_ack().acked(0).server_seq(), first.push_ack().acked(0).server_seq());
  EXPECT_EQ(stored_ops(), 2u);
  // The same op id with other content is a replay attack, refused.
  auto op = f.op("risk", 2, {}, 1, sync::OpId::from_bytes(crypto::as_bytes(
                                       first.push_ack().acked(0).op_id())));
  EXPECT_EQ(code_of(owner->request(f.push({op}))), ErrorCode::CHAIN_REPLAY);
}

TEST_F(KithdTest, ForgedMembershipEntryIsRefused) {
  owner_with_plan();
  TestDevice mallory(dir.path(), "mallory");
  mallory.connect(*server);
  // Mallory writes a grant to herself, as if she were the owner's device, signed by her own key.
  sync::MembershipLog log = owner->engine->membership(plan);
  auto e = log.next(sync::MembershipEntry::Kind::kGrant, mallory.device(), 5);
  e.member = mallory.account();
  e.grants = {{sync::Section::parse("health"), sync::Permission::kRead, 0}};
  e.sign(mallory.secrets().device.signing);
  auto reply = mallory.request(message_with(0, [&](ClientMessage& m) {
    m.mutable_push_membership()->set_plan_id(str(plan.bytes()));
    m.mutable_push_membership()->add_entries(str(e.serialize()));
  }));
  const auto code = code_of(reply);
  EXPECT_TRUE(code == ErrorCode::FORBIDDEN || code == ErrorCode::NOT_MEMBER ||
              code == ErrorCode::MEMBERSHIP_INVALID)
      << kith::v1::ErrorCode_Name(code);
  // A key rotation the owner's device could write, with a signature that does not verify.
  auto forged = log.next(sync::MembershipEntry::Kind::kKeyRotation, owner->device(), 5);
  forged.section = sync::Section::parse("notes");
  forged.epoch = 2;
  forged.sign(owner->secrets().device.signing);
  forged.signature[7] ^= 1;
  reply = owner->request(message_with(0, [&](ClientMessage& m) {
    m.mutable_push_membership()->set_plan_id(str(plan.bytes()));
    m.mutable_push_membership()->add_entries(str(forged.serialize()));
  }));
  EXPECT_EQ(code_of(reply), ErrorCode::BAD_SIGNATURE) << reply.DebugString();
  auto c = raw_catch_up(*owner, plan, 0);
  EXPECT_EQ(c.entries.size(), owner->engine->membership(plan).size());
}

TEST_F(KithdTest, EnvelopeForANonMemberIsRefused) {
  owner_with_plan();
  TestDevice stranger(dir.path(), "stranger");
  auto env = crypto::Envelope::create(
      crypto::SectionKey::generate(),
      sync::section_key_context(plan, sync::Section::parse("health"), 1),
      stranger.secrets().device.encryption.public_key(), owner->secrets().device.signing);
  auto reply = owner->request(message_with(0, [&](ClientMessage& m) {
    m.mutable_push_envelopes()->set_plan_id(str(plan.bytes()));
    m.mutable_push_envelopes()->add_envelopes(str(env.serialize()));
  }));
  EXPECT_EQ(code_of(reply), ErrorCode::NOT_MEMBER);
}

}  // namespace
}  // namespace kith::test
