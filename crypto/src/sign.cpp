#include "kith/crypto/sign.hpp"

#include <sodium.h>

#include "kith/crypto/error.hpp"
#include "kith/crypto/init.hpp"
#include "kith/crypto/primitives.hpp"

namespace kith::crypto {

static_assert(crypto_sign_PUBLICKEYBYTES == kVerifyKeySize);
static_assert(crypto_sign_BYTES == kSignatureSize);
static_assert(crypto_sign_SEEDBYTES == kSeedSize);
static_assert(crypto_sign_SECRETKEYBYTES == 64);

Bytes labelled_message(SignatureLabel label, ByteView message) {
  ByteWriter w(1 + label.text().size() + message.size());
  w.u8(static_cast<std::uint8_t>(label.text().size())).raw(label.text()).raw(message);
  return std::move(w).take();
}

VerifyKey VerifyKey::parse(ByteView bytes) {
  VerifyKey k;
  copy_exact(bytes, k.key_.data(), k.key_.size(), "an Ed25519 public key");
  return k;
}

bool VerifyKey::verify(SignatureLabel label, ByteView message, ByteView signature) const {
  return primitive::ed25519_verify(bytes(), labelled_message(label, message), signature);
}

SigningKey::SigningKey(const SecretArray<kSeedSize>& seed) : seed_(seed) {
  ensure_initialized();
  crypto_sign_seed_keypair(public_.key_.data(), expanded_.data(), seed_.data());
}

SigningKey SigningKey::generate() { return SigningKey(random_secret<kSeedSize>()); }

SigningKey SigningKey::from_seed(const SecretArray<kSeedSize>& seed) { return SigningKey(seed); }

SigningKey SigningKey::parse(ByteView seed) {
  return SigningKey(secret_from<kSeedSize>(seed, "an Ed25519 seed"));
}

Signature SigningKey::sign(SignatureLabel label, ByteView message) const {
  return primitive::ed25519_sign(*this, labelled_message(label, message));
}

}  // namespace kith::crypto
