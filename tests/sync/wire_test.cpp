#include "kith/sync/wire.hpp"

#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <iterator>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/vectors.hpp"

namespace kith::sync::wire {
namespace {

namespace pb = kith::v1;
using google::protobuf::util::MessageDifferencer;

std::string pattern(std::size_t n, std::uint8_t start = 0) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((start + i) & 0xFF);
  return s;
}

std::string plan_id() { return pattern(kPlanIdBytes, 0x00); }
std::string signature() { return pattern(kSignatureBytes, 0x40); }

// Decodes with the decoder for the message's own type.
DecodeResult<pb::ClientMessage> decode_as(const pb::ClientMessage&, ByteView bytes,
                                          const Limits& limits = {}) {
  return decode_client(bytes, limits);
}
DecodeResult<pb::ServerMessage> decode_as(const pb::ServerMessage&, ByteView bytes,
                                          const Limits& limits = {}) {
  return decode_server(bytes, limits);
}

// ---------------------------------------------------------------------------------------------
// One complete message of every kind, every field set.
// ---------------------------------------------------------------------------------------------

void fill(pb::WireOp* op, int i) {
  op->set_header("header-" + std::to_string(i));
  op->set_body("sealed-body-" + std::to_string(i));
}

void fill(pb::SignedHead* head) {
  head->set_head("head");
  head->set_signature(signature());
}

std::vector<pb::ClientMessage> every_client_message() {
  std::vector<pb::ClientMessage> out;
  auto next = [&] {
    out.emplace_back().set_request_id(out.size() + 1);
    return &out.back();
  };
  auto* hello = next()->mutable_hello();
  hello->set_protocol_version(kProtocolVersion);
  hello->set_device_certificate(pattern(kDeviceCertificateBytes, 1));
  hello->set_client_name("Kith iOS 1.4 — Ünïcode");
  next()->mutable_authenticate()->set_signature(signature());
  auto* sub = next()->mutable_subscribe();
  sub->set_plan_id(plan_id());
  sub->set_cursor(UINT64_MAX);
  sub->set_membership_count(7);
  next()->mutable_unsubscribe()->set_plan_id(plan_id());
  auto* push = next()->mutable_push_ops();
  push->set_plan_id(plan_id());
  for (int i = 0; i < 3; ++i) fill(push->add_ops(), i);
  fill(push->add_heads());
  auto* members = next()->mutable_push_membership();
  members->set_plan_id(plan_id());
  members->add_entries("entry-0");
  members->add_entries(std::string(100, '\0'));
  auto* envelopes = next()->mutable_push_envelopes();
  envelopes->set_plan_id(plan_id());
  envelopes->add_envelopes("envelope-0");
  envelopes->set_invite_id(pattern(kOpIdBytes, 0x31));
  auto* redeem = next()->mutable_redeem_invite();
  redeem->set_plan_id(plan_id());
  redeem->set_invite_id(pattern(kOpIdBytes, 0x32));
  redeem->set_invite_box_key(pattern(kBoxKeyBytes, 0x33));
  redeem->set_proof(signature());
  auto* fetch = next()->mutable_fetch_log();
  fetch->set_plan_id(plan_id());
  fetch->set_after(99);
  fetch->set_limit(100);
  next()->mutable_ping()->set_client_time_ms(1700000000000);
  auto* list = next()->mutable_list_plans();
  list->set_after_plan_id(plan_id());
  list->set_limit(2);
  return out;
}

std::vector<pb::ServerMessage> every_server_message() {
  std::vector<pb::ServerMessage> out;
  auto next = [&] {
    out.emplace_back().set_request_id(out.size() + 1);
    return &out.back();
  };
  auto* challenge = next()->mutable_challenge();
  challenge->set_nonce(pattern(kNonceBytes, 0xE0));
  challenge->set_server_time_ms(1700000000000);
  auto* authed = next()->mutable_authenticated();
  authed->set_account_id(pattern(kAccountIdBytes, 0xA0));
  authed->set_device_id(pattern(kDeviceIdBytes, 0xC0));
  auto* ack = next()->mutable_push_ack();
  ack->set_plan_id(plan_id());
  auto* acked = ack->add_acked();
  acked->set_op_id(pattern(kOpIdBytes, 0x10));
  acked->set_server_seq(43);
  ack->set_membership_count(4);
  ack->set_envelopes_stored(2);
  auto* batch = next()->mutable_ops_batch();
  batch->set_plan_id(plan_id());
  for (int i = 0; i < 3; ++i) {
    auto* d = batch->add_ops();
    d->set_server_seq(static_cast<std::uint64_t>(10 + i));
    fill(d->mutable_op(), i);
  }
  fill(batch->add_heads());
  batch->set_up_to_seq(13);
  batch->set_more(true);
  auto* members = next()->mutable_membership_batch();
  members->set_plan_id(plan_id());
  members->set_first_index(3);
  members->add_entries("entry-3");
  auto* envelopes = next()->mutable_envelope_batch();
  envelopes->set_plan_id(plan_id());
  envelopes->add_envelopes("envelope-0");
  auto* done = next()->mutable_catch_up_complete();
  done->set_plan_id(plan_id());
  done->set_server_seq(13);
  auto* sum = done->add_checksums();
  sum->set_section("profile");
  sum->set_op_count(12);
  sum->set_digest(pattern(kDigestBytes, 0x60));
  auto* log = next()->mutable_access_log();
  log->set_plan_id(plan_id());
  auto* entry = log->add_entries();
  entry->set_account_id(pattern(kAccountIdBytes, 0xA0));
  entry->set_device_id(pattern(kDeviceIdBytes, 0xC0));
  entry->set_section("health");
  entry->set_up_to_seq(12);
  entry->set_at_ms(1700000123456);
  entry->set_kind(pb::AccessLogEntry::CATCH_UP);
  log->set_next_after(5);
  log->set_more(true);
  auto* pong = next()->mutable_pong();
  pong->set_client_time_ms(1);
  pong->set_server_time_ms(2);
  auto* error = next()->mutable_error();
  error->set_code(pb::CHAIN_FORK);
  error->set_message("op 10111213 conflicts with a stored op; rebuild the chain");
  error->set_op_id(pattern(kOpIdBytes, 0x10));
  error->set_plan_id(plan_id());
  error->set_retry_after_ms(500);
  auto* redeemed = next()->mutable_invite_redeemed();
  redeemed->set_plan_id(plan_id());
  redeemed->set_invite_id(pattern(kOpIdBytes, 0x34));
  redeemed->set_membership_count(4);
  redeemed->set_expires_at_ms(1700000999999);
  auto* plans = next()->mutable_plan_list();
  auto* listed = plans->add_plans();
  listed->set_plan_id(plan_id());
  listed->set_owner(true);
  listed->set_owner_account_id(pattern(kAccountIdBytes, 0xA0));
  listed->set_created_at_ms(1700000000001);
  listed->set_expires_at_ms(1700000000002);
  listed->set_expired(true);
  plans->set_more(true);
  return out;
}

template <class Msg>
void expect_round_trip(const Msg& msg) {
  SCOPED_TRACE(msg.ShortDebugString());
  Bytes bytes = encode(msg);
  auto decoded = decode_as(msg, bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_TRUE(MessageDifferencer::Equals(decoded.value(), msg));
  EXPECT_EQ(encode(decoded.value()), bytes);
}

TEST(WireRoundTrip, EveryClientMessageKind) {
  auto all = every_client_message();
  // One of each kind of body, so a kind added to the schema without a test shows up here.
  ASSERT_EQ(all.size(), static_cast<std::size_t>(
                            pb::ClientMessage::GetDescriptor()->oneof_decl(0)->field_count()));
  for (const auto& msg : all) expect_round_trip(msg);
}

TEST(WireRoundTrip, EveryServerMessageKind) {
  auto all = every_server_message();
  ASSERT_EQ(all.size(), static_cast<std::size_t>(
                            pb::ServerMessage::GetDescriptor()->oneof_decl(0)->field_count()));
  for (const auto& msg : all) expect_round_trip(msg);
}

TEST(WireRoundTrip, BodiesWithEveryFieldAtItsDefault) {
  // Ping, Pong and Error may be empty; the oneof case alone is still sent.
  pb::ClientMessage ping;
  ping.mutable_ping();
  expect_round_trip(ping);
  EXPECT_EQ(encode(ping), (Bytes{0x52, 0x00}));
  pb::ServerMessage pong;
  pong.mutable_pong();
  expect_round_trip(pong);
}

TEST(WireRoundTrip, EncodingIsDeterministic) {
  for (const auto& msg : every_server_message()) {
    pb::ServerMessage copy = msg;
    EXPECT_EQ(encode(msg), encode(copy));
  }
}

// ---------------------------------------------------------------------------------------------
// Test vectors: bytes that Swift and Kotlin encoders must reproduce.
// ---------------------------------------------------------------------------------------------

template <class Msg>
void check_vector(const nlohmann::json& c) {
  Msg from_text;
  ASSERT_TRUE(
      google::protobuf::TextFormat::ParseFromString(c.at("text").get<std::string>(), &from_text));
  Msg from_json;
  auto status = google::protobuf::util::JsonStringToMessage(c.at("json").dump(), &from_json);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_TRUE(MessageDifferencer::Equals(from_text, from_json))
      << "text and json forms of the vector differ";

  const Bytes expected = test::hex_field(c, "hex");
  EXPECT_EQ(crypto::to_hex(encode(from_text)), crypto::to_hex(expected));

  auto decoded = decode_as(from_text, expected);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_TRUE(MessageDifferencer::Equals(decoded.value(), from_text))
      << decoded->ShortDebugString();
}

TEST(WireVectors, EncodeToTheCanonicalBytesAndDecodeToTheSameFields) {
  auto doc = test::load_json(test::own_vector_path("wire_messages.json"));
  const auto& cases = doc.at("cases");
  ASSERT_GE(cases.size(), 10u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.at("name").get<std::string>());
    const auto type = c.at("type").get<std::string>();
    if (type == "kith.v1.ClientMessage") {
      check_vector<pb::ClientMessage>(c);
    } else {
      ASSERT_EQ(type, "kith.v1.ServerMessage");
      check_vector<pb::ServerMessage>(c);
    }
  }
}

const nlohmann::json& vector_case(const nlohmann::json& doc, const std::string& name) {
  for (const auto& c : doc.at("cases")) {
    if (c.at("name") == name) return c;
  }
  throw std::runtime_error("no vector named " + name);
}

TEST(WireVectors, MessagesBuiltFieldByFieldMatchTheVectors) {
  // The same messages as two of the vectors, built through the C++ API rather than text.
  auto doc = test::load_json(test::own_vector_path("wire_messages.json"));
  auto certs = test::load_json(test::own_vector_path("device_certificates.json"));

  pb::ClientMessage hello;
  hello.set_request_id(1);
  hello.mutable_hello()->set_protocol_version(1);
  Bytes cert = test::hex_field(certs.at("cases").at(0), "certificate");
  hello.mutable_hello()->set_device_certificate(std::string(cert.begin(), cert.end()));
  hello.mutable_hello()->set_client_name("Kith CLI 0.1");
  EXPECT_EQ(encode(hello), test::hex_field(vector_case(doc, "client_hello"), "hex"));

  pb::ServerMessage error;
  error.set_request_id(4);
  error.mutable_error()->set_code(pb::CHAIN_GAP);
  error.mutable_error()->set_message(
      "op 1011121314151617 skips chain position 7; push the ops before it first");
  error.mutable_error()->set_op_id(pattern(16, 0x10));
  error.mutable_error()->set_plan_id(plan_id());
  Bytes want = test::hex_field(vector_case(doc, "server_error_chain_gap"), "hex");
  EXPECT_EQ(encode(error), want);
  auto decoded = decode_server(want);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->request_id(), 4u);
  EXPECT_EQ(decoded->error().code(), pb::CHAIN_GAP);
  EXPECT_EQ(decoded->error().op_id(), pattern(16, 0x10));
  EXPECT_EQ(decoded->error().retry_after_ms(), 0u);
}

// ---------------------------------------------------------------------------------------------
// Limits and fixed sizes, as tables of messages written in protobuf text format.
// ---------------------------------------------------------------------------------------------

// `bytes` as a text-format string literal.
std::string q(const std::string& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char b : bytes) ((out += "\\x") += kHex[b >> 4]) += kHex[b & 15];
  return out + "\"";
}

std::string repeat(std::size_t n, const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += text;
  return out;
}

// Encodes a ServerMessage (server) or ClientMessage written in text format.
Bytes encode_text(bool server, const std::string& text) {
  auto parse = [&](auto msg) {
    if (!google::protobuf::TextFormat::ParseFromString(text, &msg)) {
      throw std::runtime_error("test message does not parse: " + text.substr(0, 200));
    }
    return encode(msg);
  };
  return server ? parse(pb::ServerMessage()) : parse(pb::ClientMessage());
}

// The decoder's verdict: nullopt when the bytes decode.
std::optional<WireError> refusal(bool server, const Bytes& bytes) {
  if (server) {
    auto r = decode_server(bytes);
    return r.ok() ? std::nullopt : std::optional(r.error());
  }
  auto r = decode_client(bytes);
  return r.ok() ? std::nullopt : std::optional(r.error());
}

const std::string kPlan = "plan_id: " + q(plan_id()) + " ";
const std::string kHead = "heads { head: \"h\" signature: " + q(signature()) + " } ";

struct LimitCase {
  std::size_t limit;
  const char* expect;  // must appear in the error message, with the limit
  bool server;
  std::function<std::string(std::size_t)> text;  // the message with n of the limited thing
};

std::vector<LimitCase> limit_cases() {
  const Limits l;
  auto s = [](std::size_t n) { return q(pattern(n)); };
  auto checksums = [](std::size_t count, std::size_t section) {
    return "catch_up_complete { " + kPlan +
           repeat(count, "checksums { section: " + q(std::string(section, 's')) +
                             " digest: " + q(pattern(kDigestBytes)) + " } ") +
           "}";
  };
  auto access_log = [](std::size_t count, std::size_t section) {
    return "access_log { " + kPlan +
           repeat(count, "entries { account_id: " + q(pattern(kAccountIdBytes)) +
                             " device_id: " + q(pattern(kDeviceIdBytes)) +
                             " section: " + q(std::string(section, 's')) + " } ") +
           "}";
  };
  return {
      // Client messages.
      {l.max_ops, "push_ops has 1001 ops; at most 1000 are allowed per push", false,
       [](auto n) { return "push_ops { " + kPlan + repeat(n, "ops { header: \"h\" } ") + "}"; }},
      {l.max_op_header_bytes, "push_ops.ops[0].header has 513 bytes; an op header is at most 512",
       false, [s](auto n) { return "push_ops { " + kPlan + "ops { header: " + s(n) + " } }"; }},
      {l.max_op_body_bytes, "push_ops.ops[1].body has 65537 bytes", false,
       [s](auto n) { return "push_ops { " + kPlan + "ops {} ops { body: " + s(n) + " } }"; }},
      {l.max_heads, "push_ops has 65 heads; at most 64 are allowed per push", false,
       [](auto n) { return "push_ops { " + kPlan + repeat(n, kHead) + "}"; }},
      {l.max_head_bytes, "push_ops.heads[0].head has 513 bytes; a chain head is at most 512", false,
       [s](auto n) {
         return "push_ops { " + kPlan + "heads { head: " + s(n) + " signature: " + q(signature()) +
                " } }";
       }},
      {l.max_membership_entries, "push_membership has 257 membership entries; at most 256", false,
       [](auto n) { return "push_membership { " + kPlan + repeat(n, "entries: \"e\" ") + "}"; }},
      {l.max_membership_entry_bytes, "push_membership.entries[0] has 16385 bytes", false,
       [s](auto n) { return "push_membership { " + kPlan + "entries: " + s(n) + " }"; }},
      {l.max_envelopes, "push_envelopes has 257 envelopes; at most 256", false,
       [](auto n) { return "push_envelopes { " + kPlan + repeat(n, "envelopes: \"e\" ") + "}"; }},
      {l.max_envelope_bytes, "push_envelopes.envelopes[0] has 2049 bytes", false,
       [s](auto n) { return "push_envelopes { " + kPlan + "envelopes: " + s(n) + " }"; }},
      {l.max_client_name_bytes, "hello.client_name has 65 bytes; a client name is at most 64",
       false,
       [](auto n) {
         return "hello { device_certificate: " + q(pattern(kDeviceCertificateBytes)) +
                " client_name: " + q(std::string(n, 'k')) + " }";
       }},
      {l.max_access_log_entries, "fetch_log.limit is 1001; at most 1000", false,
       [](auto n) { return "fetch_log { " + kPlan + "limit: " + std::to_string(n) + " }"; }},
      {l.max_plan_list_entries, "list_plans.limit is 1001; at most 1000", false,
       [](auto n) { return "list_plans { limit: " + std::to_string(n) + " }"; }},
      // Server messages.
      {l.max_plan_list_entries, "plan_list has 1001 plans; at most 1000 are allowed per page", true,
       [](auto n) {
         return "plan_list { " +
                repeat(n, "plans { plan_id: " + q(pattern(kPlanIdBytes)) +
                              " owner_account_id: " + q(pattern(kAccountIdBytes)) + " } ") +
                "}";
       }},
      {l.max_ops, "ops_batch has 1001 ops; at most 1000 are allowed per batch", true,
       [](auto n) { return "ops_batch { " + kPlan + repeat(n, "ops { server_seq: 1 } ") + "}"; }},
      {l.max_op_header_bytes, "ops_batch.ops[0].op.header has 513 bytes", true,
       [s](auto n) { return "ops_batch { " + kPlan + "ops { op { header: " + s(n) + " } } }"; }},
      {l.max_op_body_bytes, "ops_batch.ops[0].op.body has 65537 bytes", true,
       [s](auto n) { return "ops_batch { " + kPlan + "ops { op { body: " + s(n) + " } } }"; }},
      {l.max_heads, "ops_batch has 65 heads; at most 64 are allowed per batch", true,
       [](auto n) { return "ops_batch { " + kPlan + repeat(n, kHead) + "}"; }},
      {l.max_ops, "push_ack has 1001 acknowledged ops; at most 1000", true,
       [](auto n) {
         return "push_ack { " + kPlan +
                repeat(n, "acked { op_id: " + q(pattern(kOpIdBytes)) + " } ") + "}";
       }},
      {l.max_membership_entries, "membership_batch has 257 membership entries; at most 256", true,
       [](auto n) { return "membership_batch { " + kPlan + repeat(n, "entries: \"e\" ") + "}"; }},
      {l.max_membership_entry_bytes, "membership_batch.entries[0] has 16385 bytes", true,
       [s](auto n) { return "membership_batch { " + kPlan + "entries: " + s(n) + " }"; }},
      {l.max_envelopes, "envelope_batch has 257 envelopes; at most 256", true,
       [](auto n) { return "envelope_batch { " + kPlan + repeat(n, "envelopes: \"e\" ") + "}"; }},
      {l.max_envelope_bytes, "envelope_batch.envelopes[0] has 2049 bytes", true,
       [s](auto n) { return "envelope_batch { " + kPlan + "envelopes: " + s(n) + " }"; }},
      {l.max_section_checksums, "catch_up_complete has 65 section checksums; at most 64", true,
       [checksums](auto n) { return checksums(n, 7); }},
      {l.max_section_bytes, "catch_up_complete.checksums[0].section has 33 bytes", true,
       [checksums](auto n) { return checksums(1, n); }},
      {l.max_access_log_entries, "access_log has 1001 entries; at most 1000", true,
       [access_log](auto n) { return access_log(n, 6); }},
      {l.max_section_bytes, "access_log.entries[0].section has 33 bytes; a section name is at",
       true, [access_log](auto n) { return access_log(1, n); }},
      {l.max_error_message_bytes, "error.message has 1025 bytes; an error message is at most 1024",
       true,
       [](auto n) { return "error { code: INTERNAL message: " + q(std::string(n, 'x')) + " }"; }},
  };
}

TEST(WireLimits, EveryLimitPassesAtTheLimitAndFailsOneOver) {
  const auto cases = limit_cases();
  ASSERT_EQ(cases.size(), 27u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.expect);
    auto at_limit = refusal(c.server, encode_text(c.server, c.text(c.limit)));
    EXPECT_FALSE(at_limit.has_value()) << at_limit->message;
    auto over = refusal(c.server, encode_text(c.server, c.text(c.limit + 1)));
    ASSERT_TRUE(over.has_value());
    EXPECT_EQ(over->code, SyncErrorCode::kTooLarge) << over->message;
    EXPECT_NE(over->message.find(c.expect), std::string::npos) << over->message;
    EXPECT_NE(over->message.find(std::to_string(c.limit)), std::string::npos) << over->message;
  }
}

TEST(WireLimits, MessageOverMaxBytesIsRefusedBeforeParsing) {
  // 0xFF bytes never parse (wire type 7 does not exist), so only a size check that runs first
  // can give TOO_LARGE.
  const Limits l;
  Bytes junk(l.max_message_bytes + 1, 0xFF);
  auto c = decode_client(junk);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, SyncErrorCode::kTooLarge);
  EXPECT_EQ(c.error().message,
            "client message has 1048577 bytes; at most 1048576 bytes are allowed per message");
  auto s = decode_server(junk);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, SyncErrorCode::kTooLarge);

  junk.pop_back();  // exactly at the limit: parsed, and refused as malformed instead
  EXPECT_EQ(decode_client(junk).error().code, SyncErrorCode::kMalformed);
}

TEST(WireLimits, MessageExactlyAtMaxBytesDecodes) {
  const Bytes bytes =
      encode_text(false, "push_membership { " + kPlan + "entries: " + q(pattern(1000)) + " }");
  Limits l;
  l.max_message_bytes = bytes.size();
  EXPECT_TRUE(decode_client(bytes, l).ok());
  l.max_message_bytes = bytes.size() - 1;
  auto r = decode_client(bytes, l);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, SyncErrorCode::kTooLarge);
}

TEST(WireLimits, AFullPushAtTheDefaultLimitsFitsInOneMessage) {
  // 15 ops with the largest header and body the limits allow stay under 1 MiB, a 16th does
  // not: for large ops the byte limit binds before the count. A sender splits by check().
  const Limits l;
  pb::ClientMessage m;
  m.mutable_push_ops()->set_plan_id(plan_id());
  for (int i = 0; i < 15; ++i) {
    auto* op = m.mutable_push_ops()->add_ops();
    op->set_header(pattern(l.max_op_header_bytes));
    op->set_body(pattern(l.max_op_body_bytes));
  }
  EXPECT_FALSE(check(m).has_value());
  EXPECT_TRUE(decode_client(encode(m)).ok());
  m.mutable_push_ops()->add_ops()->set_body(pattern(l.max_op_body_bytes));
  EXPECT_EQ(decode_client(encode(m)).error().code, SyncErrorCode::kTooLarge);
}

// A length-delimited field holding `inner`.
Bytes with_length(std::uint8_t tag, const Bytes& inner) {
  Bytes out{tag};
  for (std::size_t n = inner.size();; n >>= 7) {
    out.push_back(static_cast<std::uint8_t>((n & 0x7F) | (n >= 0x80 ? 0x80 : 0)));
    if (n < 0x80) break;
  }
  out.insert(out.end(), inner.begin(), inner.end());
  return out;
}

TEST(WireLimits, ManyTinyFieldsAreRefusedBeforeParsing) {
  // Just under 1 MiB, all of it fields of two or three bytes: parsed, each would cost ~50 bytes.
  const std::size_t room = (1u << 20) - 8;
  Bytes empty_ops;  // push_ops { ops {} ops {} ... }
  while (empty_ops.size() + 2 <= room) empty_ops.insert(empty_ops.end(), {0x12, 0x00});
  Bytes unknown_varints;  // subscribe { <field 111>: 1 ... }
  while (unknown_varints.size() + 3 <= room) {
    unknown_varints.insert(unknown_varints.end(), {0xF8, 0x06, 0x01});
  }
  Bytes unknown_group{0x9B, 0x06};  // subscribe { <group 99> { <field 1>: 0 ... } }
  while (unknown_group.size() + 4 <= room) unknown_group.insert(unknown_group.end(), {0x08, 0x00});
  unknown_group.insert(unknown_group.end(), {0x9C, 0x06});

  for (const Bytes& bytes : {with_length(0x32, empty_ops), with_length(0x22, unknown_varints),
                             with_length(0x22, unknown_group)}) {
    ASSERT_LE(bytes.size(), Limits{}.max_message_bytes);
    auto r = decode_client(bytes);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, SyncErrorCode::kTooLarge);
    EXPECT_EQ(r.error().message,
              "client message has more than 32768 fields; at most 32768 are allowed per message");
  }
}

TEST(WireLimits, FieldCountPassesAtTheLimitAndFailsOneOver) {
  const Bytes bytes = encode_text(false, "request_id: 1 ping { client_time_ms: 2 }");  // 3 fields
  Limits l;
  l.max_fields = 3;
  EXPECT_TRUE(decode_client(bytes, l).ok());
  l.max_fields = 2;
  auto r = decode_client(bytes, l);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, SyncErrorCode::kTooLarge);
}

TEST(WireLimits, LargestValidMessagesFitTheFieldBudget) {
  const Limits l;
  pb::ServerMessage log;
  log.set_request_id(1);
  log.mutable_access_log()->set_plan_id(plan_id());
  for (std::size_t i = 0; i < l.max_access_log_entries; ++i) {
    auto* e = log.mutable_access_log()->add_entries();
    e->set_account_id(pattern(kAccountIdBytes));
    e->set_device_id(pattern(kDeviceIdBytes));
    e->set_section("activity");
    e->set_up_to_seq(i + 1);
    e->set_at_ms(1700000000000 + i);
    e->set_kind(pb::AccessLogEntry::LIVE);
  }
  log.mutable_access_log()->set_next_after(9);
  log.mutable_access_log()->set_more(true);
  EXPECT_TRUE(decode_server(encode(log)).ok());

  pb::ServerMessage batch;
  batch.set_request_id(1);
  batch.mutable_ops_batch()->set_plan_id(plan_id());
  for (std::size_t i = 0; i < l.max_ops; ++i) {
    auto* d = batch.mutable_ops_batch()->add_ops();
    d->set_server_seq(i + 1);
    d->mutable_op()->set_header("h");
    d->mutable_op()->set_body("b");
  }
  for (std::size_t i = 0; i < l.max_heads; ++i) fill(batch.mutable_ops_batch()->add_heads());
  batch.mutable_ops_batch()->set_up_to_seq(1000);
  batch.mutable_ops_batch()->set_more(true);
  auto r = decode_server(encode(batch));
  EXPECT_TRUE(r.ok()) << r.error().message;
}

TEST(WireLimits, CheckRefusesAnOverfullPushBeforeItIsSent) {
  pb::ClientMessage m;
  m.mutable_push_ops()->set_plan_id(plan_id());
  for (int i = 0; i < 1001; ++i) m.mutable_push_ops()->add_ops()->set_header("h");
  auto e = check(m);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, SyncErrorCode::kTooLarge);
  EXPECT_EQ(e->message, "push_ops has 1001 ops; at most 1000 are allowed per push");
}

struct FixedCase {
  const char* field;
  std::size_t size;
  bool server;
  std::string text;  // the message; `$` stands for the field's value
  bool may_be_empty = false;
};

std::vector<FixedCase> fixed_cases() {
  const std::string account = q(pattern(kAccountIdBytes));
  const std::string device = q(pattern(kDeviceIdBytes));
  return {
      {"hello.device_certificate", kDeviceCertificateBytes, false,
       "hello { device_certificate: $ }"},
      {"authenticate.signature", kSignatureBytes, false, "authenticate { signature: $ }"},
      {"subscribe.plan_id", kPlanIdBytes, false, "subscribe { plan_id: $ }"},
      // The recovery box key and its proof go together: empty alone is refused too.
      {"subscribe.recovery_box_key", kBoxKeyBytes, false,
       "subscribe { " + kPlan + "recovery_box_key: $ recovery_proof: " +
           q(pattern(kSignatureBytes)) + " }"},
      {"subscribe.recovery_proof", kSignatureBytes, false,
       "subscribe { " + kPlan + "recovery_box_key: " + q(pattern(kBoxKeyBytes)) +
           " recovery_proof: $ }"},
      {"push_envelopes.recovery_proof", kSignatureBytes, false,
       "push_envelopes { " + kPlan + "recovery_proof: $ }", true},
      {"unsubscribe.plan_id", kPlanIdBytes, false, "unsubscribe { plan_id: $ }"},
      {"push_ops.plan_id", kPlanIdBytes, false, "push_ops { plan_id: $ }"},
      {"push_ops.heads[1].signature", kSignatureBytes, false,
       "push_ops { " + kPlan + kHead + "heads { signature: $ } }"},
      {"push_membership.plan_id", kPlanIdBytes, false, "push_membership { plan_id: $ }"},
      {"push_envelopes.plan_id", kPlanIdBytes, false, "push_envelopes { plan_id: $ }"},
      {"fetch_log.plan_id", kPlanIdBytes, false, "fetch_log { plan_id: $ }"},
      {"list_plans.after_plan_id", kPlanIdBytes, false, "list_plans { after_plan_id: $ }", true},
      {"challenge.nonce", kNonceBytes, true, "challenge { nonce: $ }"},
      {"authenticated.account_id", kAccountIdBytes, true,
       "authenticated { account_id: $ device_id: " + device + " }"},
      {"authenticated.device_id", kDeviceIdBytes, true,
       "authenticated { account_id: " + account + " device_id: $ }"},
      {"push_ack.plan_id", kPlanIdBytes, true, "push_ack { plan_id: $ }"},
      {"push_ack.acked[0].op_id", kOpIdBytes, true, "push_ack { " + kPlan + "acked { op_id: $ } }"},
      {"ops_batch.plan_id", kPlanIdBytes, true, "ops_batch { plan_id: $ }"},
      {"ops_batch.heads[0].signature", kSignatureBytes, true,
       "ops_batch { " + kPlan + "heads { signature: $ } }"},
      {"membership_batch.plan_id", kPlanIdBytes, true, "membership_batch { plan_id: $ }"},
      {"envelope_batch.plan_id", kPlanIdBytes, true, "envelope_batch { plan_id: $ }"},
      {"catch_up_complete.plan_id", kPlanIdBytes, true, "catch_up_complete { plan_id: $ }"},
      {"catch_up_complete.checksums[0].digest", kDigestBytes, true,
       "catch_up_complete { " + kPlan + "checksums { section: \"risk\" digest: $ } }"},
      {"access_log.plan_id", kPlanIdBytes, true, "access_log { plan_id: $ }"},
      {"access_log.entries[0].account_id", kAccountIdBytes, true,
       "access_log { " + kPlan + "entries { section: \"risk\" account_id: $ device_id: " + device +
           " } }"},
      {"access_log.entries[0].device_id", kDeviceIdBytes, true,
       "access_log { " + kPlan + "entries { section: \"risk\" account_id: " + account +
           " device_id: $ } }"},
      {"plan_list.plans[0].plan_id", kPlanIdBytes, true,
       "plan_list { plans { plan_id: $ owner_account_id: " + account + " } }"},
      {"plan_list.plans[0].owner_account_id", kAccountIdBytes, true,
       "plan_list { plans { plan_id: " + q(pattern(kPlanIdBytes)) + " owner_account_id: $ } }"},
      {"error.op_id", kOpIdBytes, true, "error { op_id: $ }", true},
      {"error.plan_id", kPlanIdBytes, true, "error { plan_id: $ }", true},
  };
}

TEST(WireFixedSizes, WrongSizeIdsSignaturesAndDigestsAreMalformed) {
  for (const auto& c : fixed_cases()) {
    SCOPED_TRACE(c.field);
    auto decode = [&](std::size_t size) {
      std::string text = c.text;
      text.replace(text.find('$'), 1, q(pattern(size)));
      return refusal(c.server, encode_text(c.server, text));
    };
    auto exact = decode(c.size);
    EXPECT_FALSE(exact.has_value()) << exact->message;
    EXPECT_EQ(decode(0).has_value(), !c.may_be_empty);
    for (std::size_t wrong : {c.size - 1, c.size + 1}) {
      auto e = decode(wrong);
      ASSERT_TRUE(e.has_value()) << wrong << " bytes";
      EXPECT_EQ(e->code, SyncErrorCode::kMalformed);
      EXPECT_NE(e->message.find(c.field + std::string(" has ") + std::to_string(wrong)),
                std::string::npos)
          << e->message;
      EXPECT_NE(e->message.find("exactly " + std::to_string(c.size)), std::string::npos)
          << e->message;
    }
  }
}

TEST(WireFixedSizes, EmptySectionNameIsMalformed) {
  auto e = refusal(true, encode_text(true, "catch_up_complete { " + kPlan + "checksums { digest: " +
                                               q(pattern(kDigestBytes)) + " } }"));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, SyncErrorCode::kMalformed);
  EXPECT_EQ(e->message,
            "catch_up_complete.checksums[0].section is empty; a section name is 1 to 32 bytes");
}

// ---------------------------------------------------------------------------------------------
// Structure: the oneof, unknown fields, UTF-8
// ---------------------------------------------------------------------------------------------

TEST(WireStructure, MessageWithoutABodyIsMalformed) {
  pb::ClientMessage c;
  c.set_request_id(7);
  auto rc = decode_client(encode(c));
  ASSERT_FALSE(rc.ok());
  EXPECT_EQ(rc.error().code, SyncErrorCode::kMalformed);
  EXPECT_NE(rc.error().message.find("no body"), std::string::npos);

  auto empty = decode_server(Bytes{});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, SyncErrorCode::kMalformed);
  EXPECT_NE(empty.error().message.find("no body"), std::string::npos);
}

TEST(WireStructure, BodyOfAKindFromANewerVersionIsMalformedAndSaysSo) {
  // Field 50, length-delimited, empty: what a future ClientMessage kind would look like.
  Bytes future{0x08, 0x01, 0x92, 0x03, 0x00};
  auto r = decode_client(future);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, SyncErrorCode::kMalformed);
  EXPECT_NE(r.error().message.find("does not know (field 50)"), std::string::npos)
      << r.error().message;
}

TEST(WireStructure, UnknownFieldsAreAcceptedAndDropped) {
  pb::ClientMessage m;
  m.set_request_id(3);
  m.mutable_subscribe()->set_plan_id(plan_id());
  m.mutable_subscribe()->set_cursor(9);
  const Bytes plain = encode(m);

  pb::ClientMessage newer = m;
  newer.GetReflection()->MutableUnknownFields(&newer)->AddVarint(99, 7);
  auto* sub = newer.mutable_subscribe();
  sub->GetReflection()->MutableUnknownFields(sub)->AddLengthDelimited(15, "future");
  const Bytes with_unknown = encode(newer);
  ASSERT_GT(with_unknown.size(), plain.size());

  auto r = decode_client(with_unknown);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->subscribe().cursor(), 9u);
  EXPECT_EQ(encode(r.value()), plain) << "unknown fields must not survive a decode";
}

TEST(WireStructure, TextThatIsNotUtf8IsMalformed) {
  pb::ClientMessage m;
  m.mutable_hello()->set_device_certificate(pattern(kDeviceCertificateBytes));
  m.mutable_hello()->set_client_name("Kith\xC3");  // a cut two-byte sequence
  Bytes bytes;
  {
    google::protobuf::LogSilencer quiet;  // protobuf warns when encoding it, too
    bytes = encode(m);
  }
  auto r = decode_client(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, SyncErrorCode::kMalformed);
}

TEST(WireStructure, UnknownErrorCodesFromANewerServerAreKept) {
  pb::ServerMessage m;
  m.mutable_error()->set_code(static_cast<pb::ErrorCode>(999));
  m.mutable_error()->set_message("something new");
  auto r = decode_server(encode(m));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(static_cast<int>(r->error().code()), 999);
}

// ---------------------------------------------------------------------------------------------
// Hostile input: nothing crashes, everything refused is MALFORMED (or TOO_LARGE)
// ---------------------------------------------------------------------------------------------

template <class Result>
void expect_refused_cleanly(const Result& r, bool allow_too_large = false) {
  if (r.ok()) return;  // random bytes can be a valid message; then it passed every check
  if (allow_too_large && r.error().code == SyncErrorCode::kTooLarge) return;
  EXPECT_EQ(r.error().code, SyncErrorCode::kMalformed) << r.error().message;
  EXPECT_FALSE(r.error().message.empty());
}

TEST(WireHostileInput, RandomBytesNeverCrashAndAreMalformed) {
  std::mt19937_64 rng(20240611);
  std::size_t refused = 0;
  constexpr int kRounds = 4000;
  for (int i = 0; i < kRounds; ++i) {
    Bytes junk(rng() % 600);
    for (auto& b : junk) b = static_cast<std::uint8_t>(rng());
    auto c = decode_client(junk);
    auto s = decode_server(junk);
    expect_refused_cleanly(c);
    expect_refused_cleanly(s);
    refused += !c.ok() && !s.ok();
  }
  EXPECT_GT(refused, kRounds * 9 / 10);
}

std::vector<Bytes> valid_encodings() {
  std::vector<Bytes> out;
  for (const auto& m : every_client_message()) out.push_back(encode(m));
  for (const auto& m : every_server_message()) out.push_back(encode(m));
  return out;
}

TEST(WireHostileInput, TruncatedMessagesNeverCrashAndAreMalformed) {
  for (const Bytes& full : valid_encodings()) {
    for (std::size_t n = 0; n < full.size(); ++n) {
      Bytes cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n));
      auto c = decode_client(cut);
      auto s = decode_server(cut);
      // A prefix may happen to end on a field boundary and still be a valid message.
      expect_refused_cleanly(c);
      expect_refused_cleanly(s);
    }
  }
}

TEST(WireHostileInput, MutatedMessagesNeverCrash) {
  std::mt19937_64 rng(7);
  const auto valid = valid_encodings();
  for (int round = 0; round < 3000; ++round) {
    Bytes b = valid[rng() % valid.size()];
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % b.size()] = static_cast<std::uint8_t>(rng());
    auto c = decode_client(b);
    auto s = decode_server(b);
    // A flipped length can make a field grow past its limit without breaking the parse.
    expect_refused_cleanly(c, true);
    expect_refused_cleanly(s, true);
    if (c.ok()) {
      EXPECT_FALSE(check(c.value()).has_value());
    }
    if (s.ok()) {
      EXPECT_FALSE(check(s.value()).has_value());
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Error codes and replies
// ---------------------------------------------------------------------------------------------

TEST(WireErrors, CodeNumbersAndNamesAreStable) {
  const std::pair<const char*, int> stable[] = {
      {"UNSPECIFIED", 0},         {"MALFORMED", 1},       {"TOO_LARGE", 2},
      {"UNSUPPORTED_VERSION", 3}, {"UNAUTHENTICATED", 4}, {"BAD_SIGNATURE", 5},
      {"NOT_MEMBER", 6},          {"FORBIDDEN", 7},       {"GRANT_EXPIRED", 8},
      {"RETIRED_EPOCH", 9},       {"CHAIN_GAP", 10},      {"CHAIN_FORK", 11},
      {"BAD_HEAD", 12},           {"RATE_LIMITED", 13},   {"SLOW_READER", 14},
      {"SERVER_BUSY", 15},        {"SHUTTING_DOWN", 16},  {"INTERNAL", 17},
      {"UNKNOWN_SECTION", 18},    {"CHAIN_REPLAY", 19},   {"MEMBERSHIP_INVALID", 20},
      {"INVITE_UNKNOWN", 21},     {"INVITE_USED", 22},    {"INVITE_EXPIRED", 23},
  };
  for (const auto& [name, number] : stable) {
    pb::ErrorCode code{};
    ASSERT_TRUE(pb::ErrorCode_Parse(name, &code)) << name;
    EXPECT_EQ(static_cast<int>(code), number) << name;
  }
  EXPECT_EQ(pb::ErrorCode_descriptor()->value_count(), static_cast<int>(std::size(stable)));
}

TEST(WireErrors, SyncErrorsMapToWireCodes) {
  EXPECT_EQ(wire_error_code(SyncErrorCode::kMalformed), pb::MALFORMED);
  EXPECT_EQ(wire_error_code(SyncErrorCode::kTooLarge), pb::TOO_LARGE);
  EXPECT_EQ(wire_error_code(SyncErrorCode::kChainGap), pb::CHAIN_GAP);
  EXPECT_EQ(wire_error_code(SyncErrorCode::kChainFork), pb::CHAIN_FORK);
  EXPECT_EQ(wire_error_code(SyncErrorCode::kChainReplay), pb::CHAIN_REPLAY);
  for (SyncErrorCode c : {SyncErrorCode::kNotMember, SyncErrorCode::kForbidden,
                         SyncErrorCode::kGrantExpired, SyncErrorCode::kRetiredEpoch,
                         SyncErrorCode::kChainFork, SyncErrorCode::kMembershipInvalid,
                         SyncErrorCode::kInviteUsed}) {
    EXPECT_EQ(sync_error_code(wire_error_code(c)), c);
  }
  EXPECT_EQ(sync_error_code(pb::RATE_LIMITED), SyncErrorCode::kMalformed);
  EXPECT_EQ(wire_error_code(SyncErrorCode::kInviteUnknown), pb::INVITE_UNKNOWN);
  EXPECT_EQ(wire_error_code(SyncErrorCode::kInviteUsed), pb::INVITE_USED);
  EXPECT_EQ(wire_error_code(SyncErrorCode::kInviteExpired), pb::INVITE_EXPIRED);
  EXPECT_EQ(wire_error_code(SyncErrorCode::kRetiredEpoch), pb::RETIRED_EPOCH);
  EXPECT_EQ(wire_error_code(SyncErrorCode::kMembershipInvalid), pb::MEMBERSHIP_INVALID);
  EXPECT_EQ(wire_error_code(SyncErrorCode::kStore), pb::INTERNAL);
}

TEST(WireErrors, DecodeFailureBecomesAnErrorReplyThePeerAccepts) {
  auto r = decode_client(Bytes{0x08, 0x05});
  ASSERT_FALSE(r.ok());
  auto reply = make_error(5, wire_error_code(r.error().code), r.error().message);
  auto back = decode_server(encode(reply));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->request_id(), 5u);
  EXPECT_EQ(back->error().code(), pb::MALFORMED);
  EXPECT_EQ(back->error().message(), r.error().message);
}

TEST(WireErrors, OverlongOrNonUtf8ErrorMessagesAreCutToFit) {
  // 'é' is two bytes: 600 of them are 1200 bytes, over the 1 KiB limit.
  std::string text;
  for (int i = 0; i < 600; ++i) text += "\xC3\xA9";
  auto reply = make_error(1, pb::SERVER_BUSY, text);
  const std::string& cut = reply.error().message();
  EXPECT_LE(cut.size(), 1024u);
  EXPECT_EQ(cut.substr(cut.size() - 3), "...");
  EXPECT_EQ((cut.size() - 3) % 2, 0u) << "cut inside a character";
  EXPECT_TRUE(decode_server(encode(reply)).ok());

  auto bad = make_error(1, pb::INTERNAL, "bad \xFF byte \xED\xA0\x80 surrogate");
  EXPECT_EQ(bad.error().message(), "bad ? byte ??? surrogate");
  EXPECT_TRUE(decode_server(encode(bad)).ok());
}

}  // namespace
}  // namespace kith::sync::wire
