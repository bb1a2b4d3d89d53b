// Ops: one signed, encrypted mutation of records in one section.
//
// An op is a canonical header (plaintext, readable by the server: plan, section, epoch, author,
// chain position, clock) and a body sealed under the section key with the header bytes as the
// associated data, so no header field can be changed or the body moved to another op. The op's
// hash covers both and links the author's next op in that section (the chain, chain.hpp).
// Layouts: docs/PROTOCOL.md, "Ops". Values; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kith/crypto/aead.hpp"
#include "kith/crypto/hash.hpp"
#include "kith/sync/ids.hpp"
#include "kith/sync/section.hpp"

namespace kith::sync {

inline constexpr std::uint8_t kOpVersion = 1;
inline constexpr std::size_t kMaxOpBody = 64 * 1024;  // sealed body bytes
inline constexpr std::size_t kMaxMutationsPerOp = 256;
inline constexpr std::size_t kMaxFieldValue = 16 * 1024;
inline constexpr std::size_t kMaxSeenVersions = 32;
inline constexpr std::size_t kMaxTypeName = 32;

using OpHash = crypto::Hash;
using RecordId = OpId;  // 16 random bytes chosen by the creating device

struct OpHeader {
  PlanId plan;
  OpId op_id;
  Section section = Section::parse("profile");
  std::uint64_t epoch = 0;
  DeviceId author;
  std::uint64_t author_seq = 0;  // 1-based, per (author device, section)
  OpHash prev{};                 // hash of the author's op author_seq - 1 here; zero for seq 1
  Hlc clock;
  std::uint64_t membership_index = 0;  // how many membership entries the author had applied

  Bytes serialize() const;
  // Throws SyncError(kMalformed / kUnknownSection) for anything but a canonical header.
  static OpHeader parse(ByteView bytes);
};

// The version of one field written by one mutation: the op and the mutation's index in it.
struct VersionId {
  OpId op;
  std::uint16_t index = 0;
  std::string text() const;  // "<op hex>:<index>"
  friend auto operator<=>(const VersionId&, const VersionId&) = default;
};

// One change to one record.
struct Mutation {
  enum class Kind : std::uint8_t { kCreate = 1, kSet = 2 };
  Kind kind = Kind::kSet;
  RecordId record;
  std::string type;             // kCreate: the record type
  std::string field;            // kSet
  std::string value;            // kSet; UTF-8
  std::vector<VersionId> seen;  // kSet: the versions of this field the author had seen

  friend bool operator==(const Mutation&, const Mutation&) = default;
};

struct OpBody {
  std::vector<Mutation> mutations;
  // Canonical plaintext layout; throws SyncError(kTooLarge) past the limits above.
  crypto::SecretBytes serialize() const;
  // Throws SyncError(kMalformed / kTooLarge).
  static OpBody parse(ByteView bytes);
};

// A sealed op as it travels and is stored.
struct Op {
  Bytes header;  // OpHeader::serialize()
  Bytes body;    // crypto::seal(section key, body plaintext, ad = header)

  OpHash hash() const;
};

// Seals `body` under `key` with the header as associated data.
Op seal_op(const OpHeader& header, const OpBody& body, const crypto::SectionKey& key);
// The body, or nullopt if it does not open under `key` with this header.
std::optional<OpBody> open_op(const Op& op, const crypto::SectionKey& key);

// hash = BLAKE2b-256(u32(len(header)) || header || body)
OpHash op_hash(ByteView header, ByteView body);

}  // namespace kith::sync
