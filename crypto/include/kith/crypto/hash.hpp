// BLAKE2b hashing (plain, keyed, incremental) and crypto_kdf subkey derivation with named
// contexts. All functions are thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "kith/crypto/bytes.hpp"
#include "kith/crypto/secret.hpp"

namespace kith::crypto {

inline constexpr std::size_t kHashSize = 32;
using Hash = std::array<std::uint8_t, kHashSize>;

// BLAKE2b with a 32-byte output.
Hash blake2b(ByteView data);
// BLAKE2b with an output of `out_len` bytes (16..64). Throws KeyFormatError otherwise.
Bytes blake2b(ByteView data, std::size_t out_len);
// Keyed BLAKE2b (a MAC / PRF). `key` is 16..64 bytes, `out_len` 16..64.
Bytes blake2b_keyed(ByteView key, ByteView data, std::size_t out_len);

// Incremental BLAKE2b, for hashing a structure field by field without concatenating it.
class Blake2b {
 public:
  explicit Blake2b(std::size_t out_len = kHashSize);
  Blake2b(ByteView key, std::size_t out_len);
  ~Blake2b();
  Blake2b(const Blake2b&) = delete;
  Blake2b& operator=(const Blake2b&) = delete;

  Blake2b& update(ByteView data);
  Blake2b& update(std::string_view data) { return update(as_bytes(data)); }
  // May be called once.
  Bytes finish();

 private:
  alignas(64) std::array<std::uint8_t, 384> state_;  // crypto_generichash_state, opaque here
  std::size_t out_len_;
};

// A crypto_kdf context: exactly 8 characters, checked when the constant is made.
class KdfContext {
 public:
  consteval explicit KdfContext(const char (&text)[9]) : text_{} {
    for (int i = 0; i < 8; ++i) text_[i] = text[i];
    text_[8] = '\0';
  }
  const char* c_str() const noexcept { return text_; }

 private:
  char text_[9];
};

// crypto_kdf_derive_from_key: the 32-byte subkey number `id` of `master` for `context`.
SecretArray<32> derive_subkey32(const SecretArray<32>& master, std::uint64_t id,
                                KdfContext context);

}  // namespace kith::crypto
