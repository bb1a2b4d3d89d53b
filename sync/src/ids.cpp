#include "kith/sync/ids.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "kith/crypto/error.hpp"
#include "kith/crypto/secret.hpp"
#include "kith/sync/error.hpp"

namespace kith::sync {

template <std::size_t N, class Tag>
FixedId<N, Tag> FixedId<N, Tag>::from_bytes(ByteView bytes) {
  if (bytes.size() != N) {
    throw SyncError(SyncErrorCode::kMalformed, "an id must be " + std::to_string(N) +
                                                   " bytes, got " + std::to_string(bytes.size()));
  }
  FixedId id;
  std::copy(bytes.begin(), bytes.end(), id.bytes_.begin());
  return id;
}

template <std::size_t N, class Tag>
FixedId<N, Tag> FixedId<N, Tag>::parse(std::string_view hex) {
  if (hex.size() != 2 * N) {
    throw SyncError(
        SyncErrorCode::kMalformed,
        "an id is " + std::to_string(2 * N) + " hex digits; '" + std::string(hex) + "' is not one");
  }
  try {
    return from_bytes(crypto::from_hex(hex));
  } catch (const crypto::KeyFormatError&) {
    throw SyncError(SyncErrorCode::kMalformed, "an id is written in hex digits 0-9 and a-f; '" +
                                                   std::string(hex) + "' is not one");
  }
}

template <std::size_t N, class Tag>
FixedId<N, Tag> FixedId<N, Tag>::random() {
  FixedId id;
  crypto::random_fill(id.bytes_.data(), N);
  return id;
}

std::uint64_t keyed_id_hash(ByteView bytes) noexcept {
  static const auto key = [] {
    std::array<unsigned char, crypto_shorthash_KEYBYTES> k{};
    crypto::random_fill(k.data(), k.size());
    return k;
  }();
  unsigned char out[crypto_shorthash_BYTES];
  crypto_shorthash(out, bytes.data(), bytes.size(), key.data());
  std::uint64_t h = 0;
  std::memcpy(&h, out, sizeof h);
  return h;
}

template class FixedId<16, PlanTag>;
template class FixedId<16, OpTag>;
template class FixedId<32, AccountTag>;
template class FixedId<32, DeviceTag>;

}  // namespace kith::sync
