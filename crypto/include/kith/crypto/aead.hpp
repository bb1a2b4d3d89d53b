// Authenticated encryption of plan content under a section key: XChaCha20-Poly1305-IETF with a
// random 24-byte nonce and caller-supplied associated data, plus a key-commitment tag.
//
// Poly1305 alone does not commit to the key: one ciphertext can be made to open under two keys.
// Each ciphertext therefore carries a keyed BLAKE2b tag over nonce, AD and ciphertext, keyed by
// a subkey of the section key, and `open` checks it (in constant time) before decrypting.
// Layout and subkeys: docs/PROTOCOL.md, "Sealed content". Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "kith/crypto/bytes.hpp"
#include "kith/crypto/hash.hpp"
#include "kith/crypto/secret.hpp"

namespace kith::crypto {

inline constexpr std::size_t kSectionKeySize = 32;
inline constexpr std::size_t kNonceSize = 24;
inline constexpr std::size_t kCommitmentSize = 32;
inline constexpr std::size_t kAeadTagSize = 16;
// nonce || commitment || ciphertext || Poly1305 tag
inline constexpr std::size_t kSealedOverhead = kNonceSize + kCommitmentSize + kAeadTagSize;

using Nonce = std::array<std::uint8_t, kNonceSize>;
using Commitment = std::array<std::uint8_t, kCommitmentSize>;

// The symmetric key of one section in one epoch. Holds the key and its two subkeys (for
// encryption and for the commitment tag), all wiped on destruction.
class SectionKey {
 public:
  static SectionKey generate();
  // Throws KeyFormatError unless `bytes` is 32 bytes.
  static SectionKey parse(ByteView bytes);
  // A section key derived from a master secret (crypto_kdf), e.g. from an invite secret.
  static SectionKey derive(const SecretArray<32>& master, std::uint64_t id, KdfContext context);

  const SecretArray<kSectionKeySize>& secret() const noexcept { return key_; }
  friend bool operator==(const SectionKey& a, const SectionKey& b) noexcept {
    return a.key_ == b.key_;
  }

 private:
  explicit SectionKey(const SecretArray<kSectionKeySize>& key);
  friend Bytes seal_with_nonce(const SectionKey&, const Nonce&, ByteView, ByteView);
  friend std::optional<std::size_t> open_into(const SectionKey&, ByteView, ByteView,
                                              std::span<std::uint8_t>);
  friend Commitment commitment_tag(const SectionKey&, ByteView, ByteView, ByteView);
  SecretArray<kSectionKeySize> key_;
  SecretArray<32> encryption_key_;
  SecretArray<32> commitment_key_;
};

// nonce || commitment || ciphertext-with-tag, with a fresh random nonce.
Bytes seal(const SectionKey& key, ByteView plaintext, ByteView ad);
// As seal() with a caller-chosen nonce: for test vectors only. Reusing a nonce under one key
// destroys confidentiality.
Bytes seal_with_nonce(const SectionKey& key, const Nonce& nonce, ByteView plaintext, ByteView ad);
// The plaintext, or nullopt if anything (nonce, commitment, ciphertext, tag, AD, key) differs
// from what was sealed or `sealed` is too short.
std::optional<SecretBytes> open(const SectionKey& key, ByteView sealed, ByteView ad);
// As open(), into `out` instead of a new SecretBytes, for a caller that opens many small
// messages into a buffer of its own (which it then wipes): the plaintext's size, or nullopt as
// open() gives it, with no plaintext left in `out`. Throws KeyFormatError(kInvalidLength) if
// `out` is shorter than the plaintext (sealed.size() - kSealedOverhead).
std::optional<std::size_t> open_into(const SectionKey& key, ByteView sealed, ByteView ad,
                                     std::span<std::uint8_t> out);
// The commitment tag over (nonce, AD, ciphertext-with-tag), as defined in docs/PROTOCOL.md.
Commitment commitment_tag(const SectionKey& key, ByteView nonce, ByteView ad, ByteView ciphertext);

}  // namespace kith::crypto
