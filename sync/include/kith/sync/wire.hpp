// The sync wire codec: turns one WebSocket message into a checked kith.v1.ClientMessage or
// ServerMessage (sync/proto/kith/v1/sync.proto), and back.
//
// A decoder is the first thing that touches bytes from the network, so it never throws on bad
// input and never trusts a length: it refuses a message over Limits::max_message_bytes, or with
// more than Limits::max_fields fields, before parsing; parses; then checks that exactly one body is
// set, that every fixed-size field (ids, nonces, signatures, digests) has exactly its size, and
// that every count and field is within its limit. What comes back is either a message that passed
// all of that or a WireError whose text names the field and the limit, ready to send back as an
// Error. It does not check signatures, chains or grants; the opaque `bytes` fields are parsed by
// the layers that own them.
//
// Unknown fields (from a newer peer) are accepted and then dropped, so nothing this version does
// not understand is ever stored or forwarded; a body of a kind this version does not know is
// refused as MALFORMED. docs/PROTOCOL.md ("Sync wire messages") gives the reasons.
//
//   auto in = wire::decode_client(frame, limits);
//   if (!in) return send(wire::make_error(0, wire::wire_error_code(in.error().code),
//                                         in.error().message));
//   const kith::v1::ClientMessage& msg = in.value();
//
// All functions are pure and may be called concurrently from any thread, as long as no thread
// modifies a message another is reading (protobuf's own rule).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "kith/crypto/bytes.hpp"
#include "kith/sync/error.hpp"
#include "kith/v1/sync.pb.h"

namespace kith::sync::wire {

using crypto::Bytes;
using crypto::ByteView;

inline constexpr std::uint32_t kProtocolVersion = 1;

// Exact sizes of the fixed-size fields.
inline constexpr std::size_t kPlanIdBytes = 16;
inline constexpr std::size_t kOpIdBytes = 16;
inline constexpr std::size_t kAccountIdBytes = 32;
inline constexpr std::size_t kDeviceIdBytes = 32;
inline constexpr std::size_t kNonceBytes = 32;
inline constexpr std::size_t kSignatureBytes = 64;
inline constexpr std::size_t kDigestBytes = 32;
inline constexpr std::size_t kBoxKeyBytes = 32;
inline constexpr std::size_t kDeviceCertificateBytes = 169;  // docs/PROTOCOL.md, version 1

// What a decoder accepts. The defaults are the protocol's (docs/PROTOCOL.md); both ends use
// them, and a test may lower them. Sizes are in bytes.
struct Limits {
  std::size_t max_message_bytes = 1024 * 1024;  // one encoded ClientMessage / ServerMessage
  std::size_t max_ops = 1000;                   // per PushOps, OpsBatch or PushAck
  std::size_t max_op_header_bytes = 512;
  std::size_t max_op_body_bytes = 64 * 1024;
  std::size_t max_heads = 64;  // per PushOps or OpsBatch
  std::size_t max_head_bytes = 512;
  std::size_t max_membership_entries = 256;  // per PushMembership or MembershipBatch
  std::size_t max_membership_entry_bytes = 16 * 1024;
  std::size_t max_envelopes = 256;  // per PushEnvelopes or EnvelopeBatch
  std::size_t max_envelope_bytes = 2 * 1024;
  std::size_t max_client_name_bytes = 64;
  std::size_t max_section_bytes = 32;         // a section name (docs/PROTOCOL.md, Sync)
  std::size_t max_section_checksums = 64;     // per CatchUpComplete
  std::size_t max_access_log_entries = 1000;  // per AccessLog, and FetchLog.limit
  std::size_t max_plan_list_entries = 1000;   // per PlanList, and ListPlans.limit
  std::size_t max_error_message_bytes = 1024;
  // Fields at any depth, counted on the raw bytes before parsing. A parse allocates up to about
  // 100 bytes per field, so 1 MiB of empty two-byte entries would otherwise take ~55 MB; this
  // keeps a parse within a few MB. The largest valid messages at the limits above have about
  // 7,000 fields.
  std::size_t max_fields = 32 * 1024;
};

// Why bytes were refused. `code` is kMalformed or kTooLarge; `message` is one sentence naming
// the field and, for a limit, the limit ("push_ops has 1001 ops; at most 1000 are allowed per
// push").
struct WireError {
  SyncErrorCode code;
  std::string message;
};

// Either a checked message or the reason there is none. Accessing the wrong alternative throws
// std::bad_variant_access (a programming error, never a consequence of the input).
template <class T>
class DecodeResult {
 public:
  DecodeResult(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design
  DecodeResult(WireError error) : v_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const WireError& error() const& { return std::get<1>(v_); }

 private:
  std::variant<T, WireError> v_;
};

// Decodes one message from a client / from the server. Never throws on bad input.
[[nodiscard]] DecodeResult<kith::v1::ClientMessage> decode_client(ByteView bytes,
                                                                  const Limits& limits = {});
[[nodiscard]] DecodeResult<kith::v1::ServerMessage> decode_server(ByteView bytes,
                                                                  const Limits& limits = {});

// The checks a decoder makes after parsing, for a message built locally: a sender calls it to
// split a push before the peer refuses it. An empty optional means the message passes.
[[nodiscard]] std::optional<WireError> check(const kith::v1::ClientMessage& msg,
                                             const Limits& limits = {});
[[nodiscard]] std::optional<WireError> check(const kith::v1::ServerMessage& msg,
                                             const Limits& limits = {});

// The deterministic encoding (fields in number order, defaults and unknown fields omitted):
// the same message always gives the same bytes, which is what tests/vectors/wire_messages.json
// pins. Encoding does not check limits (see check()). Throws std::length_error only for a
// message over 2 GiB, which protobuf cannot encode.
Bytes encode(const kith::v1::ClientMessage& msg);
Bytes encode(const kith::v1::ServerMessage& msg);

// The wire code to send for a sync error. Codes that only a client can meet (a section key it
// lacks, its own database) map to INTERNAL.
kith::v1::ErrorCode wire_error_code(SyncErrorCode code) noexcept;
// The other way, for a client reporting a server's refusal: the SyncErrorCode that names the
// same failure, or kMalformed for codes with no counterpart (rate limits, INTERNAL, ...).
SyncErrorCode sync_error_code(kith::v1::ErrorCode code) noexcept;

// An Error reply. A message longer than limits.max_error_message_bytes is cut at a UTF-8
// character boundary and ends in "...", so a server never sends an Error its peer would refuse.
kith::v1::ServerMessage make_error(std::uint64_t request_id, kith::v1::ErrorCode code,
                                   std::string_view message, const Limits& limits = {});

}  // namespace kith::sync::wire
