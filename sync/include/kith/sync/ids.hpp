// Identifiers shared by every part of sync: plans, ops, accounts and devices.
//
// PlanId and OpId are 16 random bytes chosen by a client (an op id chosen before the first push
// is what makes a retried push idempotent). AccountId is the account's Ed25519 identity public
// key and DeviceId the device's Ed25519 signing public key, so an id is also the key that checks
// its signatures. Every id prints as lower-case hex and parses back (`parse` throws SyncError
// with code kMalformed on a wrong length or a non-hex character). Values; thread-safe.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "kith/crypto/bytes.hpp"

namespace kith::sync {

using crypto::Bytes;
using crypto::ByteView;

template <std::size_t N, class Tag>
class FixedId {
 public:
  static constexpr std::size_t kSize = N;

  FixedId() { bytes_.fill(0); }
  // Throws SyncError(kMalformed) unless `bytes` has exactly N bytes.
  static FixedId from_bytes(ByteView bytes);
  static FixedId parse(std::string_view hex);
  // N random bytes (libsodium's CSPRNG).
  static FixedId random();

  ByteView bytes() const noexcept { return {bytes_.data(), N}; }
  std::string hex() const { return crypto::to_hex(bytes()); }
  // The first 8 hex digits, for logs and people; never used as an identifier.
  std::string short_hex() const { return hex().substr(0, 8); }
  bool is_zero() const noexcept {
    for (auto b : bytes_) {
      if (b) return false;
    }
    return true;
  }

  // Byte order (what the default would give), compared eight bytes at a time as big-endian
  // words: maps and sets keyed by ids compare them at every step, and the defaults called
  // memcmp each time.
  friend std::strong_ordering operator<=>(const FixedId& a, const FixedId& b) noexcept {
    for (std::size_t i = 0; i < N; i += 8) {
      const std::uint64_t x = word(a, i), y = word(b, i);
      if (x != y) return x <=> y;
    }
    return std::strong_ordering::equal;
  }
  friend bool operator==(const FixedId& a, const FixedId& b) noexcept { return (a <=> b) == 0; }

 private:
  static_assert(N % 8 == 0);
  // Compilers turn this into one load and a byte swap.
  static std::uint64_t word(const FixedId& id, std::size_t at) noexcept {
    std::uint64_t w = 0;
    for (std::size_t k = 0; k < 8; ++k) w = w << 8 | id.bytes_[at + k];
    return w;
  }

  std::array<std::uint8_t, N> bytes_;
};

struct PlanTag;
struct OpTag;
struct AccountTag;
struct DeviceTag;

// A hash for unordered containers: SipHash-2-4 (libsodium's crypto_shorthash) under a random
// per-process key, since ids are chosen by clients and a chosen-collision flood must not turn a
// table into a list.
std::uint64_t keyed_id_hash(ByteView bytes) noexcept;

struct IdHash {
  template <std::size_t N, class Tag>
  std::size_t operator()(const FixedId<N, Tag>& id) const noexcept {
    return static_cast<std::size_t>(keyed_id_hash(id.bytes()));
  }
};

using PlanId = FixedId<16, PlanTag>;
using OpId = FixedId<16, OpTag>;
using AccountId = FixedId<32, AccountTag>;  // identity public key
using DeviceId = FixedId<32, DeviceTag>;    // device signing public key

}  // namespace kith::sync

#if defined(__GLIBCXX__)
// libstdc++ keeps each node's hash only for hash functions it does not consider fast; for the
// others it hashes the key again on every rehash and at each step of a bucket walk. SipHash is
// not fast, so tables keyed by ids (one entry per op received) keep the hash instead. (libc++
// always keeps it.)
template <>
struct std::__is_fast_hash<kith::sync::IdHash> : std::false_type {};
#endif
