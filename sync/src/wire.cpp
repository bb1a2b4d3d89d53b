#include "kith/sync/wire.hpp"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/unknown_field_set.h>
#include <google/protobuf/wire_format_lite.h>

#include <algorithm>
#include <climits>
#include <stdexcept>
#include <string>

namespace kith::sync::wire {
namespace {

namespace pb = kith::v1;

// The name of a field in an error message, built only when a check fails:
// "push_ops.ops[3].header".
struct Field {
  std::string_view base;
  std::size_t index = kNoIndex;
  std::string_view leaf = {};

  static constexpr std::size_t kNoIndex = static_cast<std::size_t>(-1);

  std::string str() const {
    std::string out(base);
    if (index != kNoIndex) out += "[" + std::to_string(index) + "]";
    if (!leaf.empty()) (out += ".") += leaf;
    return out;
  }
};

// Collects the first failure; every later check is a no-op, so a check function can run its
// checks in order and return `ok()` without branching after each one.
class Checker {
 public:
  explicit Checker(const Limits& limits) : limits_(limits) {}

  const Limits& limits() const noexcept { return limits_; }
  bool ok() const noexcept { return !error_; }
  std::optional<WireError> take() { return std::move(error_); }

  // A fixed-size field: any other length, empty included, is malformed.
  void exact(const std::string& value, std::size_t size, Field field, std::string_view what) {
    if (ok() && value.size() != size) {
      fail(SyncErrorCode::kMalformed, field.str() + " has " + std::to_string(value.size()) +
                                          " bytes; " + std::string(what) + " is exactly " +
                                          std::to_string(size) + " bytes");
    }
  }

  // A fixed-size field that may also be left empty.
  void exact_or_empty(const std::string& value, std::size_t size, Field field,
                      std::string_view what) {
    if (!value.empty()) exact(value, size, field, what);
  }

  void max_bytes(const std::string& value, std::size_t max, Field field, std::string_view what) {
    if (ok() && value.size() > max) {
      fail(SyncErrorCode::kTooLarge, field.str() + " has " + std::to_string(value.size()) +
                                         " bytes; " + std::string(what) + " is at most " +
                                         std::to_string(max) + " bytes");
    }
  }

  // A name that must be present and bounded (a section name).
  void name(const std::string& value, std::size_t max, Field field, std::string_view what) {
    if (ok() && value.empty()) {
      fail(SyncErrorCode::kMalformed, field.str() + " is empty; " + std::string(what) +
                                          " is 1 to " + std::to_string(max) + " bytes");
    }
    max_bytes(value, max, field, what);
  }

  // "push_ops has 1001 ops; at most 1000 are allowed per push".
  void max_count(std::size_t count, std::size_t max, std::string_view message,
                 std::string_view noun, std::string_view per) {
    if (ok() && count > max) {
      fail(SyncErrorCode::kTooLarge, std::string(message) + " has " + std::to_string(count) + " " +
                                         std::string(noun) + "; at most " + std::to_string(max) +
                                         " are allowed per " + std::string(per));
    }
  }

  void fail(SyncErrorCode code, std::string message) {
    if (ok()) error_ = WireError{code, std::move(message)};
  }

 private:
  const Limits& limits_;
  std::optional<WireError> error_;
};

void check_plan_id(Checker& c, const std::string& plan_id, std::string_view message) {
  c.exact(plan_id, kPlanIdBytes, {message, Field::kNoIndex, "plan_id"}, "a plan id");
}

void check_op(Checker& c, const pb::WireOp& op, Field header, Field body) {
  c.max_bytes(op.header(), c.limits().max_op_header_bytes, header, "an op header");
  c.max_bytes(op.body(), c.limits().max_op_body_bytes, body, "an op body");
}

void check_heads(Checker& c, const google::protobuf::RepeatedPtrField<pb::SignedHead>& heads,
                 std::string_view message, std::string_view per) {
  c.max_count(static_cast<std::size_t>(heads.size()), c.limits().max_heads, message, "heads", per);
  const std::string base = std::string(message) + ".heads";
  std::size_t i = 0;
  for (const auto& head : heads) {
    if (!c.ok()) return;
    c.max_bytes(head.head(), c.limits().max_head_bytes, {base, i, "head"}, "a chain head");
    c.exact(head.signature(), kSignatureBytes, {base, i, "signature"}, "a signature");
    ++i;
  }
}

// Entries or envelopes: a bounded list of bounded opaque blobs.
void check_blobs(Checker& c, const google::protobuf::RepeatedPtrField<std::string>& blobs,
                 std::size_t max_count, std::size_t max_bytes, std::string_view message,
                 std::string_view field, std::string_view noun, std::string_view what) {
  c.max_count(static_cast<std::size_t>(blobs.size()), max_count, message, noun, "message");
  std::string base = std::string(message) + "." + std::string(field);
  std::size_t i = 0;
  for (const auto& blob : blobs) {
    if (!c.ok()) return;
    c.max_bytes(blob, max_bytes, {base, i}, what);
    ++i;
  }
}

void check_body(Checker& c, const pb::Hello& m) {
  c.exact(m.device_certificate(), kDeviceCertificateBytes, {"hello.device_certificate"},
          "a device certificate");
  c.max_bytes(m.client_name(), c.limits().max_client_name_bytes, {"hello.client_name"},
              "a client name");
}

void check_body(Checker& c, const pb::PushOps& m) {
  check_plan_id(c, m.plan_id(), "push_ops");
  c.max_count(static_cast<std::size_t>(m.ops_size()), c.limits().max_ops, "push_ops", "ops",
              "push");
  std::size_t i = 0;
  for (const auto& op : m.ops()) {
    if (!c.ok()) return;
    check_op(c, op, {"push_ops.ops", i, "header"}, {"push_ops.ops", i, "body"});
    ++i;
  }
  check_heads(c, m.heads(), "push_ops", "push");
}

void check_body(Checker& c, const pb::FetchLog& m) {
  check_plan_id(c, m.plan_id(), "fetch_log");
  if (c.ok() && m.limit() > c.limits().max_access_log_entries) {
    c.fail(SyncErrorCode::kTooLarge, "fetch_log.limit is " + std::to_string(m.limit()) +
                                         "; at most " +
                                         std::to_string(c.limits().max_access_log_entries) +
                                         " entries are returned per request");
  }
}

void check_body(Checker& c, const pb::ListPlans& m) {
  c.exact_or_empty(m.after_plan_id(), kPlanIdBytes, {"list_plans.after_plan_id"}, "a plan id");
  if (c.ok() && m.limit() > c.limits().max_plan_list_entries) {
    c.fail(SyncErrorCode::kTooLarge, "list_plans.limit is " + std::to_string(m.limit()) +
                                         "; at most " +
                                         std::to_string(c.limits().max_plan_list_entries) +
                                         " plans are returned per request");
  }
}

void check_body(Checker& c, const pb::PlanList& m) {
  c.max_count(static_cast<std::size_t>(m.plans_size()), c.limits().max_plan_list_entries,
              "plan_list", "plans", "page");
  std::size_t i = 0;
  for (const auto& p : m.plans()) {
    if (!c.ok()) return;
    c.exact(p.plan_id(), kPlanIdBytes, {"plan_list.plans", i, "plan_id"}, "a plan id");
    c.exact(p.owner_account_id(), kAccountIdBytes, {"plan_list.plans", i, "owner_account_id"},
            "an account id");
    ++i;
  }
}

void check_body(Checker& c, const pb::PushAck& m) {
  check_plan_id(c, m.plan_id(), "push_ack");
  c.max_count(static_cast<std::size_t>(m.acked_size()), c.limits().max_ops, "push_ack",
              "acknowledged ops", "ack");
  std::size_t i = 0;
  for (const auto& acked : m.acked()) {
    if (!c.ok()) return;
    c.exact(acked.op_id(), kOpIdBytes, {"push_ack.acked", i, "op_id"}, "an op id");
    ++i;
  }
}

void check_body(Checker& c, const pb::OpsBatch& m) {
  check_plan_id(c, m.plan_id(), "ops_batch");
  c.max_count(static_cast<std::size_t>(m.ops_size()), c.limits().max_ops, "ops_batch", "ops",
              "batch");
  std::size_t i = 0;
  for (const auto& delivered : m.ops()) {
    if (!c.ok()) return;
    check_op(c, delivered.op(), {"ops_batch.ops", i, "op.header"}, {"ops_batch.ops", i, "op.body"});
    ++i;
  }
  check_heads(c, m.heads(), "ops_batch", "batch");
}

void check_body(Checker& c, const pb::CatchUpComplete& m) {
  check_plan_id(c, m.plan_id(), "catch_up_complete");
  c.max_count(static_cast<std::size_t>(m.checksums_size()), c.limits().max_section_checksums,
              "catch_up_complete", "section checksums", "message");
  std::size_t i = 0;
  for (const auto& sum : m.checksums()) {
    if (!c.ok()) return;
    c.name(sum.section(), c.limits().max_section_bytes,
           {"catch_up_complete.checksums", i, "section"}, "a section name");
    c.exact(sum.digest(), kDigestBytes, {"catch_up_complete.checksums", i, "digest"},
            "a section digest");
    ++i;
  }
}

void check_body(Checker& c, const pb::AccessLog& m) {
  check_plan_id(c, m.plan_id(), "access_log");
  c.max_count(static_cast<std::size_t>(m.entries_size()), c.limits().max_access_log_entries,
              "access_log", "entries", "page");
  std::size_t i = 0;
  for (const auto& e : m.entries()) {
    if (!c.ok()) return;
    c.exact(e.account_id(), kAccountIdBytes, {"access_log.entries", i, "account_id"},
            "an account id");
    c.exact(e.device_id(), kDeviceIdBytes, {"access_log.entries", i, "device_id"}, "a device id");
    c.name(e.section(), c.limits().max_section_bytes, {"access_log.entries", i, "section"},
           "a section name");
    ++i;
  }
}

void check_body(Checker& c, const pb::Error& m) {
  c.max_bytes(m.message(), c.limits().max_error_message_bytes, {"error.message"},
              "an error message");
  c.exact_or_empty(m.op_id(), kOpIdBytes, {"error.op_id"}, "an op id");
  c.exact_or_empty(m.plan_id(), kPlanIdBytes, {"error.plan_id"}, "a plan id");
}

void check_message(Checker& c, const pb::ClientMessage& msg) {
  const Limits& l = c.limits();
  switch (msg.body_case()) {
    case pb::ClientMessage::kHello:
      return check_body(c, msg.hello());
    case pb::ClientMessage::kAuthenticate:
      return c.exact(msg.authenticate().signature(), kSignatureBytes, {"authenticate.signature"},
                     "a signature");
    case pb::ClientMessage::kSubscribe: {
      const auto& sub = msg.subscribe();
      check_plan_id(c, sub.plan_id(), "subscribe");
      c.exact_or_empty(sub.recovery_box_key(), kBoxKeyBytes, {"subscribe.recovery_box_key"},
                       "a recovery box key");
      c.exact_or_empty(sub.recovery_proof(), kSignatureBytes, {"subscribe.recovery_proof"},
                       "a signature");
      if (c.ok() && sub.recovery_box_key().empty() != sub.recovery_proof().empty()) {
        c.fail(SyncErrorCode::kMalformed,
               "subscribe.recovery_box_key and subscribe.recovery_proof go together: set both or "
               "neither");
      }
      return;
    }
    case pb::ClientMessage::kUnsubscribe:
      return check_plan_id(c, msg.unsubscribe().plan_id(), "unsubscribe");
    case pb::ClientMessage::kPushOps:
      return check_body(c, msg.push_ops());
    case pb::ClientMessage::kPushMembership:
      check_plan_id(c, msg.push_membership().plan_id(), "push_membership");
      return check_blobs(c, msg.push_membership().entries(), l.max_membership_entries,
                         l.max_membership_entry_bytes, "push_membership", "entries",
                         "membership entries", "a membership entry");
    case pb::ClientMessage::kPushEnvelopes:
      check_plan_id(c, msg.push_envelopes().plan_id(), "push_envelopes");
      c.exact_or_empty(msg.push_envelopes().invite_id(), kOpIdBytes, {"push_envelopes.invite_id"},
                       "an invite id");
      c.exact_or_empty(msg.push_envelopes().recovery_proof(), kSignatureBytes,
                       {"push_envelopes.recovery_proof"}, "a signature");
      if (c.ok() && !msg.push_envelopes().invite_id().empty() &&
          !msg.push_envelopes().recovery_proof().empty()) {
        c.fail(SyncErrorCode::kMalformed,
               "push_envelopes has both invite_id and recovery_proof; envelopes are for an "
               "invitation or for recovery, not both");
      }
      return check_blobs(c, msg.push_envelopes().envelopes(), l.max_envelopes, l.max_envelope_bytes,
                         "push_envelopes", "envelopes", "envelopes", "an envelope");
    case pb::ClientMessage::kFetchLog:
      return check_body(c, msg.fetch_log());
    case pb::ClientMessage::kPing:
      return;
    case pb::ClientMessage::kRedeemInvite: {
      const auto& r = msg.redeem_invite();
      check_plan_id(c, r.plan_id(), "redeem_invite");
      c.exact(r.invite_id(), kOpIdBytes, {"redeem_invite.invite_id"}, "an invite id");
      c.exact(r.invite_box_key(), kBoxKeyBytes, {"redeem_invite.invite_box_key"},
              "an invite's public key");
      return c.exact(r.proof(), kSignatureBytes, {"redeem_invite.proof"}, "a signature");
    }
    case pb::ClientMessage::kListPlans:
      return check_body(c, msg.list_plans());
    case pb::ClientMessage::BODY_NOT_SET:
      break;
  }
  c.fail(
      SyncErrorCode::kMalformed,
      "client message has no body; exactly one of hello, authenticate, subscribe, "
      "unsubscribe, push_ops, push_membership, push_envelopes, fetch_log, ping, redeem_invite or "
      "list_plans must be set");
}

void check_message(Checker& c, const pb::ServerMessage& msg) {
  const Limits& l = c.limits();
  switch (msg.body_case()) {
    case pb::ServerMessage::kChallenge:
      return c.exact(msg.challenge().nonce(), kNonceBytes, {"challenge.nonce"},
                     "a challenge nonce");
    case pb::ServerMessage::kAuthenticated:
      c.exact(msg.authenticated().account_id(), kAccountIdBytes, {"authenticated.account_id"},
              "an account id");
      return c.exact(msg.authenticated().device_id(), kDeviceIdBytes, {"authenticated.device_id"},
                     "a device id");
    case pb::ServerMessage::kPushAck:
      return check_body(c, msg.push_ack());
    case pb::ServerMessage::kOpsBatch:
      return check_body(c, msg.ops_batch());
    case pb::ServerMessage::kMembershipBatch:
      check_plan_id(c, msg.membership_batch().plan_id(), "membership_batch");
      return check_blobs(c, msg.membership_batch().entries(), l.max_membership_entries,
                         l.max_membership_entry_bytes, "membership_batch", "entries",
                         "membership entries", "a membership entry");
    case pb::ServerMessage::kEnvelopeBatch:
      check_plan_id(c, msg.envelope_batch().plan_id(), "envelope_batch");
      return check_blobs(c, msg.envelope_batch().envelopes(), l.max_envelopes, l.max_envelope_bytes,
                         "envelope_batch", "envelopes", "envelopes", "an envelope");
    case pb::ServerMessage::kCatchUpComplete:
      return check_body(c, msg.catch_up_complete());
    case pb::ServerMessage::kAccessLog:
      return check_body(c, msg.access_log());
    case pb::ServerMessage::kPong:
      return;
    case pb::ServerMessage::kError:
      return check_body(c, msg.error());
    case pb::ServerMessage::kInviteRedeemed:
      check_plan_id(c, msg.invite_redeemed().plan_id(), "invite_redeemed");
      return c.exact(msg.invite_redeemed().invite_id(), kOpIdBytes, {"invite_redeemed.invite_id"},
                     "an invite id");
    case pb::ServerMessage::kPlanList:
      return check_body(c, msg.plan_list());
    case pb::ServerMessage::BODY_NOT_SET:
      break;
  }
  c.fail(SyncErrorCode::kMalformed,
         "server message has no body; exactly one of challenge, authenticated, push_ack, "
         "ops_batch, membership_batch, envelope_batch, catch_up_complete, access_log, pong, "
         "error, invite_redeemed or plan_list must be set");
}

// Counts the fields in `in` (a `type` message, or an unknown group when `type` is null),
// descending into known message fields and unknown groups, and returns false once more than
// `budget` are seen. Bytes that are not well-formed end the scan with true: the parser then
// refuses them with a better message than a scan could give.
bool within_field_budget(google::protobuf::io::CodedInputStream& in,
                         const google::protobuf::Descriptor* type, std::size_t& budget, int depth) {
  using google::protobuf::FieldDescriptor;
  using WF = google::protobuf::internal::WireFormatLite;
  // Deeper than protobuf's own recursion limit: the parser refuses it.
  if (depth > 100) return true;
  while (true) {
    const std::uint32_t tag = in.ReadTag();
    if (tag == 0) return true;  // end of input (or of a submessage), or not a tag
    if (budget == 0) return false;
    --budget;
    std::uint32_t u32 = 0;
    std::uint64_t u64 = 0;
    switch (WF::GetTagWireType(tag)) {
      case WF::WIRETYPE_VARINT:
        if (!in.ReadVarint64(&u64)) return true;
        break;
      case WF::WIRETYPE_FIXED64:
        if (!in.ReadLittleEndian64(&u64)) return true;
        break;
      case WF::WIRETYPE_FIXED32:
        if (!in.ReadLittleEndian32(&u32)) return true;
        break;
      case WF::WIRETYPE_LENGTH_DELIMITED: {
        if (!in.ReadVarint32(&u32) || u32 > static_cast<std::uint32_t>(INT_MAX)) return true;
        const int length = static_cast<int>(u32);
        const FieldDescriptor* field =
            type ? type->FindFieldByNumber(static_cast<int>(WF::GetTagFieldNumber(tag))) : nullptr;
        if (field && field->type() == FieldDescriptor::TYPE_MESSAGE) {
          const auto limit = in.PushLimit(length);
          if (!within_field_budget(in, field->message_type(), budget, depth + 1)) return false;
          if (!in.ConsumedEntireMessage()) return true;
          in.PopLimit(limit);
        } else if (!in.Skip(length)) {
          return true;
        }
        break;
      }
      case WF::WIRETYPE_START_GROUP:
        // Only unknown fields can be groups in proto3; the parser keeps their contents.
        if (!within_field_budget(in, nullptr, budget, depth + 1)) return false;
        break;
      case WF::WIRETYPE_END_GROUP:
        return true;
      default:
        return true;
    }
  }
}

template <class Msg>
DecodeResult<Msg> decode(ByteView bytes, const Limits& limits, std::string_view what) {
  // Before parsing: protobuf would allocate for whatever the bytes claim.
  const std::size_t max = std::min<std::size_t>(limits.max_message_bytes, INT_MAX);
  if (bytes.size() > max) {
    return WireError{SyncErrorCode::kTooLarge, std::string(what) + " has " +
                                                   std::to_string(bytes.size()) +
                                                   " bytes; at most " + std::to_string(max) +
                                                   " bytes are allowed per message"};
  }
  std::size_t budget = limits.max_fields;
  google::protobuf::io::CodedInputStream scan(bytes.data(), static_cast<int>(bytes.size()));
  if (!within_field_budget(scan, Msg::descriptor(), budget, 0)) {
    return WireError{SyncErrorCode::kTooLarge,
                     std::string(what) + " has more than " + std::to_string(limits.max_fields) +
                         " fields; at most " + std::to_string(limits.max_fields) +
                         " are allowed per message"};
  }
  Msg msg;
  bool parsed = false;
  {
    // Protobuf logs an ERROR line for every string that is not UTF-8 before failing the parse.
    // A peer could trigger that at will to flood the logs, and the WireError already says it.
    google::protobuf::LogSilencer quiet;
    parsed = msg.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  }
  if (!parsed) {
    return WireError{SyncErrorCode::kMalformed,
                     std::string(what) + " does not decode as " + msg.GetTypeName() +
                         " (truncated, a field of the wrong type, or text that is not UTF-8)"};
  }
  const google::protobuf::UnknownFieldSet& unknown = msg.GetReflection()->GetUnknownFields(msg);
  if (msg.body_case() == Msg::BODY_NOT_SET && unknown.field_count() > 0) {
    // A newer peer's kind of message: say so, rather than "no body", so the mismatch is plain.
    return WireError{SyncErrorCode::kMalformed,
                     std::string(what) + " is of a kind this version does not know (field " +
                         std::to_string(unknown.field(0).number()) +
                         "); the receiving side runs an older version of Kith"};
  }
  // Accepted but never kept: nothing this version does not understand is stored or forwarded.
  msg.DiscardUnknownFields();
  Checker c(limits);
  check_message(c, msg);
  if (auto error = c.take()) return std::move(*error);
  return msg;
}

Bytes encode_message(const google::protobuf::MessageLite& msg) {
  const std::size_t size = msg.ByteSizeLong();
  if (size > static_cast<std::size_t>(INT_MAX)) {
    throw std::length_error("a protobuf message over 2 GiB cannot be encoded");
  }
  Bytes out(size);
  if (size == 0) return out;
  google::protobuf::io::ArrayOutputStream array(out.data(), static_cast<int>(size));
  google::protobuf::io::CodedOutputStream stream(&array);
  stream.SetSerializationDeterministic(true);
  msg.SerializeWithCachedSizes(&stream);
  stream.Trim();
  if (stream.HadError() || static_cast<std::size_t>(stream.ByteCount()) != size) {
    throw std::logic_error("protobuf encoded " + msg.GetTypeName() + " to an unexpected size");
  }
  return out;
}

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not one. As strict as protobuf's
// own check: no overlong forms, no surrogates, nothing above U+10FFFF.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  std::size_t n = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  }
  return n;
}

}  // namespace

DecodeResult<kith::v1::ClientMessage> decode_client(ByteView bytes, const Limits& limits) {
  return decode<kith::v1::ClientMessage>(bytes, limits, "client message");
}

DecodeResult<kith::v1::ServerMessage> decode_server(ByteView bytes, const Limits& limits) {
  return decode<kith::v1::ServerMessage>(bytes, limits, "server message");
}

std::optional<WireError> check(const kith::v1::ClientMessage& msg, const Limits& limits) {
  Checker c(limits);
  check_message(c, msg);
  return c.take();
}

std::optional<WireError> check(const kith::v1::ServerMessage& msg, const Limits& limits) {
  Checker c(limits);
  check_message(c, msg);
  return c.take();
}

Bytes encode(const kith::v1::ClientMessage& msg) { return encode_message(msg); }
Bytes encode(const kith::v1::ServerMessage& msg) { return encode_message(msg); }

kith::v1::ErrorCode wire_error_code(SyncErrorCode code) noexcept {
  switch (code) {
    case SyncErrorCode::kMalformed:
    case SyncErrorCode::kInvalidField:
      return pb::MALFORMED;
    case SyncErrorCode::kTooLarge:
      return pb::TOO_LARGE;
    case SyncErrorCode::kUnknownSection:
      return pb::UNKNOWN_SECTION;
    case SyncErrorCode::kBadSignature:
      return pb::BAD_SIGNATURE;
    case SyncErrorCode::kChainGap:
      return pb::CHAIN_GAP;
    case SyncErrorCode::kChainFork:
      return pb::CHAIN_FORK;
    case SyncErrorCode::kChainReplay:
      return pb::CHAIN_REPLAY;
    case SyncErrorCode::kNotMember:
      return pb::NOT_MEMBER;
    case SyncErrorCode::kForbidden:
      return pb::FORBIDDEN;
    case SyncErrorCode::kGrantExpired:
      return pb::GRANT_EXPIRED;
    case SyncErrorCode::kRetiredEpoch:
      return pb::RETIRED_EPOCH;
    case SyncErrorCode::kMembershipInvalid:
      return pb::MEMBERSHIP_INVALID;
    case SyncErrorCode::kInviteUnknown:
      return pb::INVITE_UNKNOWN;
    case SyncErrorCode::kInviteUsed:
      return pb::INVITE_USED;
    case SyncErrorCode::kInviteExpired:
      return pb::INVITE_EXPIRED;
    case SyncErrorCode::kInviteCode:
      return pb::MALFORMED;
    case SyncErrorCode::kInviteMismatch:
      return pb::BAD_SIGNATURE;
    case SyncErrorCode::kUnknownEpoch:
    case SyncErrorCode::kDecryptFailed:
    case SyncErrorCode::kStore:
    case SyncErrorCode::kSchemaTooNew:
    case SyncErrorCode::kChecksumMismatch:
    case SyncErrorCode::kServerDiverged:
      return pb::INTERNAL;
  }
  return pb::INTERNAL;
}

SyncErrorCode sync_error_code(kith::v1::ErrorCode code) noexcept {
  switch (code) {
    case pb::TOO_LARGE:
      return SyncErrorCode::kTooLarge;
    case pb::BAD_SIGNATURE:
      return SyncErrorCode::kBadSignature;
    case pb::NOT_MEMBER:
      return SyncErrorCode::kNotMember;
    case pb::FORBIDDEN:
      return SyncErrorCode::kForbidden;
    case pb::GRANT_EXPIRED:
      return SyncErrorCode::kGrantExpired;
    case pb::RETIRED_EPOCH:
      return SyncErrorCode::kRetiredEpoch;
    case pb::CHAIN_GAP:
      return SyncErrorCode::kChainGap;
    case pb::CHAIN_FORK:
      return SyncErrorCode::kChainFork;
    case pb::CHAIN_REPLAY:
      return SyncErrorCode::kChainReplay;
    case pb::UNKNOWN_SECTION:
      return SyncErrorCode::kUnknownSection;
    case pb::MEMBERSHIP_INVALID:
      return SyncErrorCode::kMembershipInvalid;
    case pb::INVITE_UNKNOWN:
      return SyncErrorCode::kInviteUnknown;
    case pb::INVITE_USED:
      return SyncErrorCode::kInviteUsed;
    case pb::INVITE_EXPIRED:
      return SyncErrorCode::kInviteExpired;
    default:
      return SyncErrorCode::kMalformed;
  }
}

kith::v1::ServerMessage make_error(std::uint64_t request_id, kith::v1::ErrorCode code,
                                   std::string_view message, const Limits& limits) {
  // Invalid UTF-8 would make the peer refuse the whole message, so replace it; then cut to the
  // limit on a character boundary.
  constexpr std::string_view kEllipsis = "...";
  const std::size_t max = limits.max_error_message_bytes;
  std::string text;
  text.reserve(std::min(message.size(), max));
  bool cut = false;
  for (std::size_t i = 0; i < message.size();) {
    std::size_t n = utf8_length(message, i);
    std::string_view piece = n ? message.substr(i, n) : std::string_view("?");
    if (text.size() + piece.size() > max) {
      cut = true;
      break;
    }
    text += piece;
    i += n ? n : 1;
  }
  if (cut) {
    if (max < kEllipsis.size()) {
      text.clear();
    } else {
      // Drop whole characters until the ellipsis fits.
      while (text.size() + kEllipsis.size() > max) {
        std::size_t end = text.size() - 1;
        while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
        text.resize(end);
      }
      text += kEllipsis;
    }
  }
  kith::v1::ServerMessage out;
  out.set_request_id(request_id);
  out.mutable_error()->set_code(code);
  out.mutable_error()->set_message(std::move(text));
  return out;
}

}  // namespace kith::sync::wire
