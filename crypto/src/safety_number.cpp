#include "kith/crypto/safety_number.hpp"

#include <string>

#include "kith/crypto/hash.hpp"

namespace kith::crypto {

namespace {
constexpr std::string_view kLabel = "kith/v1/safety-number";
constexpr int kChunks = 6;  // 6 chunks of 5 bytes -> 6 groups of 5 digits per key
}  // namespace

std::string safety_number_half(const VerifyKey& identity) {
  // BLAKE2b-512(label || identity key); each 5-byte big-endian chunk, mod 100000, is one
  // 5-digit group (the bias of 2^40 mod 10^5 is below 10^-7).
  Blake2b h(64);
  h.update(kLabel).update(identity.bytes());
  Bytes d = h.finish();
  std::string out;
  for (int c = 0; c < kChunks; ++c) {
    std::uint64_t v = 0;
    for (int i = 0; i < 5; ++i) v = (v << 8) | d[static_cast<std::size_t>(c * 5 + i)];
    std::string group = std::to_string(v % 100000);
    out += std::string(5 - group.size(), '0') + group;
  }
  return out;
}

std::string safety_number(const VerifyKey& a, const VerifyKey& b) {
  std::string x = safety_number_half(a);
  std::string y = safety_number_half(b);
  std::string digits = x < y ? x + y : y + x;
  std::string out;
  for (std::size_t i = 0; i < digits.size(); i += 5) {
    if (i) out.push_back(' ');
    out += digits.substr(i, 5);
  }
  return out;
}

}  // namespace kith::crypto
