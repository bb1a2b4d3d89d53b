// Ed25519 signatures with a domain-separation label per purpose.
//
// Every Kith signature covers `u8 len(label) || label || message` (docs/PROTOCOL.md, "Labelled
// signatures"), so a signature made for one purpose (say an envelope) never verifies for
// another (say a membership entry), even over the same message bytes. Keys are immutable after
// construction and may be used from several threads at once.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "kith/crypto/bytes.hpp"
#include "kith/crypto/secret.hpp"

namespace kith::crypto {

inline constexpr std::size_t kSignatureSize = 64;
inline constexpr std::size_t kVerifyKeySize = 32;
inline constexpr std::size_t kSeedSize = 32;
using Signature = std::array<std::uint8_t, kSignatureSize>;

// A signature purpose. The text is printable ASCII, 1..64 characters, checked at compile time
// for the constants below; runtime labels are checked by `SignatureLabel::parse`.
class SignatureLabel {
 public:
  consteval explicit SignatureLabel(std::string_view text) : text_(text) {
    if (text.empty() || text.size() > 64) throw "signature label must be 1..64 characters";
    for (char c : text) {
      if (c < 0x21 || c > 0x7e) throw "signature label must be printable ASCII";
    }
  }
  std::string_view text() const noexcept { return text_; }
  friend bool operator==(SignatureLabel a, SignatureLabel b) noexcept { return a.text_ == b.text_; }

 private:
  std::string_view text_;
};

// The purposes Kith signs for. New purposes get a new label; a label's text never changes.
namespace labels {
inline constexpr SignatureLabel kDeviceCertificate{"kith/v1/device-certificate"};
inline constexpr SignatureLabel kEnvelope{"kith/v1/envelope"};
inline constexpr SignatureLabel kOpBatchHead{"kith/v1/op-batch-head"};
inline constexpr SignatureLabel kMembershipEntry{"kith/v1/membership-entry"};
inline constexpr SignatureLabel kAuthChallenge{"kith/v1/auth-challenge"};
inline constexpr SignatureLabel kInviteJoin{"kith/v1/invite-join"};
inline constexpr SignatureLabel kInviteRedeem{"kith/v1/invite-redeem"};
inline constexpr SignatureLabel kRecoveryBox{"kith/v1/recovery-box"};
}  // namespace labels

// The exact bytes an Ed25519 signature for `label` over `message` covers.
Bytes labelled_message(SignatureLabel label, ByteView message);

// An Ed25519 public key.
class VerifyKey {
 public:
  // Throws KeyFormatError unless `bytes` is 32 bytes.
  static VerifyKey parse(ByteView bytes);

  ByteView bytes() const noexcept { return {key_.data(), key_.size()}; }
  std::string hex() const { return to_hex(bytes()); }

  // False for a wrong label, message, key or a signature that is not 64 bytes.
  [[nodiscard]] bool verify(SignatureLabel label, ByteView message, ByteView signature) const;

  friend bool operator==(const VerifyKey& a, const VerifyKey& b) noexcept {
    return a.key_ == b.key_;
  }

 private:
  friend class SigningKey;
  VerifyKey() = default;
  std::array<std::uint8_t, kVerifyKeySize> key_{};
};

class SigningKey;
namespace primitive {
Signature ed25519_sign(const SigningKey& key, ByteView message);
}  // namespace primitive

// An Ed25519 private key. Holds the 32-byte seed and libsodium's expanded 64-byte form, both
// wiped on destruction.
class SigningKey {
 public:
  static SigningKey generate();
  static SigningKey from_seed(const SecretArray<kSeedSize>& seed);
  // Throws KeyFormatError unless `seed` is 32 bytes.
  static SigningKey parse(ByteView seed);

  const SecretArray<kSeedSize>& seed() const noexcept { return seed_; }
  const VerifyKey& public_key() const noexcept { return public_; }

  Signature sign(SignatureLabel label, ByteView message) const;

 private:
  SigningKey(const SecretArray<kSeedSize>& seed);
  friend Signature primitive::ed25519_sign(const SigningKey&, ByteView);
  SecretArray<kSeedSize> seed_;
  SecretArray<64> expanded_;
  VerifyKey public_;
};

}  // namespace kith::crypto
