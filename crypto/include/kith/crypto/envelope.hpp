// Envelopes: how a section key reaches a member's device.
//
// The key is sealed to the recipient device's X25519 key (crypto_box_seal), and the granter
// signs the context (which plan, section and epoch — opaque bytes to this module), the
// recipient's key and the sealed bytes. A sealed box alone is unauthenticated, so without the
// signature a server could hand a device a key of its own choosing; `open` therefore checks the
// signature, the recipient and the context before it decrypts. Layout: docs/PROTOCOL.md,
// "Envelopes". Immutable after construction; thread-safe.
#pragma once

#include <optional>

#include "kith/crypto/aead.hpp"
#include "kith/crypto/box.hpp"
#include "kith/crypto/bytes.hpp"
#include "kith/crypto/sign.hpp"

namespace kith::crypto {

inline constexpr std::uint8_t kEnvelopeVersion = 1;
inline constexpr std::size_t kMaxEnvelopeContext = 1024;
inline constexpr std::size_t kEnvelopeSealedSize = kSectionKeySize + kSealOverhead;

class Envelope {
 public:
  // Seals `key` to `recipient` and signs it with `sender`. Throws KeyFormatError if `context`
  // is longer than kMaxEnvelopeContext.
  static Envelope create(const SectionKey& key, ByteView context, const BoxPublicKey& recipient,
                         const SigningKey& sender);
  // Throws KeyFormatError for a truncated, oversized or otherwise malformed envelope.
  static Envelope parse(ByteView bytes);

  Bytes serialize() const;
  // What the signature covers: every serialised byte before the signature.
  Bytes signed_bytes() const;

  ByteView context() const noexcept { return context_; }
  const BoxPublicKey& recipient() const noexcept { return recipient_; }
  ByteView sealed_key() const noexcept { return sealed_; }
  const Signature& signature() const noexcept { return signature_; }

  [[nodiscard]] bool verify(const VerifyKey& sender) const;
  // The section key, or nullopt unless the signature is `sender`'s, the envelope is addressed to
  // `recipient`'s public key, its context equals `expected_context`, and the box opens.
  std::optional<SectionKey> open(const BoxSecretKey& recipient, const VerifyKey& sender,
                                 ByteView expected_context) const;

 private:
  Envelope(Bytes context, const BoxPublicKey& recipient, Bytes sealed, const Signature& sig)
      : context_(std::move(context)),
        recipient_(recipient),
        sealed_(std::move(sealed)),
        signature_(sig) {}
  Bytes context_;
  BoxPublicKey recipient_;
  Bytes sealed_;
  Signature signature_;
};

}  // namespace kith::crypto
