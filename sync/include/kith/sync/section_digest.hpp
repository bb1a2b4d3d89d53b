// Section checksums: a running digest over one section's ops in server-sequence order
// (docs/PROTOCOL.md, "Section checksums"). kithd computes one per section as it stores ops and
// sends them in CatchUpComplete; the sync engine computes the same over the ops it received and
// compares, so that a server that drops, reorders or withholds an op of a section the device may
// read is noticed. One implementation, used by both.
//
// Plain values; thread-safe as values are.
#pragma once

#include <cstdint>

#include "kith/crypto/bytes.hpp"
#include "kith/crypto/hash.hpp"
#include "kith/sync/op.hpp"

namespace kith::sync {

// d(n) = BLAKE2b-256(u8(22) || "kith/v1/section-digest" || d(n-1) || op_hash(n)).
crypto::Hash next_section_digest(const crypto::Hash& previous, const OpHash& op);

// The checksum of a section after its first `op_count` ops: d(op_count), with d0 = 32 zero bytes.
struct SectionDigest {
  std::uint64_t op_count = 0;
  crypto::Hash digest{};

  // Takes the section's next op in server order.
  void add(const OpHash& op) {
    ++op_count;
    digest = next_section_digest(digest, op);
  }
  // Whether a checksum from the server says the same: the same count and the same 32 bytes,
  // compared in constant time. A digest of any other length does not match.
  [[nodiscard]] bool matches(std::uint64_t count, crypto::ByteView other) const noexcept;

  friend bool operator==(const SectionDigest&, const SectionDigest&) = default;
};

}  // namespace kith::sync
