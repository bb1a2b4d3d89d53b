// X25519 encryption keys and anonymous sealed boxes (crypto_box_seal).
//
// A device's X25519 key is generated on its own, never converted from its Ed25519 key. A sealed
// box is unauthenticated: anyone can seal to a public key. Kith therefore never trusts a sealed
// box alone; envelope.hpp signs it. Keys are immutable and thread-safe to share.
#pragma once

#include <array>
#include <optional>

#include "kith/crypto/bytes.hpp"
#include "kith/crypto/secret.hpp"

namespace kith::crypto {

inline constexpr std::size_t kBoxKeySize = 32;
inline constexpr std::size_t kSealOverhead = 48;  // ephemeral public key + Poly1305 tag

class BoxPublicKey {
 public:
  // Throws KeyFormatError unless `bytes` is 32 bytes.
  static BoxPublicKey parse(ByteView bytes);
  ByteView bytes() const noexcept { return {key_.data(), key_.size()}; }
  std::string hex() const { return to_hex(bytes()); }
  friend bool operator==(const BoxPublicKey& a, const BoxPublicKey& b) noexcept {
    return a.key_ == b.key_;
  }

 private:
  friend class BoxSecretKey;
  BoxPublicKey() = default;
  std::array<std::uint8_t, kBoxKeySize> key_{};
};

class BoxSecretKey {
 public:
  static BoxSecretKey generate();
  // Throws KeyFormatError unless `bytes` is 32 bytes.
  static BoxSecretKey parse(ByteView bytes);

  const SecretArray<kBoxKeySize>& secret() const noexcept { return secret_; }
  const BoxPublicKey& public_key() const noexcept { return public_; }

 private:
  explicit BoxSecretKey(const SecretArray<kBoxKeySize>& secret);
  SecretArray<kBoxKeySize> secret_;
  BoxPublicKey public_;
};

// Encrypts `plaintext` to `recipient` with a fresh ephemeral key (crypto_box_seal).
// The result is kSealOverhead bytes longer than the plaintext.
Bytes seal_to(const BoxPublicKey& recipient, ByteView plaintext);
// nullopt when `sealed` was not made for this key or was altered.
std::optional<SecretBytes> open_sealed(const BoxSecretKey& recipient, ByteView sealed);

}  // namespace kith::crypto
