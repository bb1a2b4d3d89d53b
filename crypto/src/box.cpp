#include "kith/crypto/box.hpp"

#include <sodium.h>

#include "kith/crypto/error.hpp"
#include "kith/crypto/init.hpp"

namespace kith::crypto {

static_assert(crypto_box_PUBLICKEYBYTES == kBoxKeySize);
static_assert(crypto_box_SECRETKEYBYTES == kBoxKeySize);
static_assert(crypto_box_SEALBYTES == kSealOverhead);

BoxPublicKey BoxPublicKey::parse(ByteView bytes) {
  BoxPublicKey k;
  copy_exact(bytes, k.key_.data(), k.key_.size(), "an X25519 public key");
  return k;
}

BoxSecretKey::BoxSecretKey(const SecretArray<kBoxKeySize>& secret) : secret_(secret) {
  ensure_initialized();
  crypto_scalarmult_base(public_.key_.data(), secret_.data());
}

BoxSecretKey BoxSecretKey::generate() { return BoxSecretKey(random_secret<kBoxKeySize>()); }

BoxSecretKey BoxSecretKey::parse(ByteView bytes) {
  return BoxSecretKey(secret_from<kBoxKeySize>(bytes, "an X25519 private key"));
}

Bytes seal_to(const BoxPublicKey& recipient, ByteView plaintext) {
  ensure_initialized();
  Bytes out(plaintext.size() + kSealOverhead);
  if (crypto_box_seal(out.data(), plaintext.data(), plaintext.size(), recipient.bytes().data()) !=
      0) {
    throw KeyFormatError(ErrorCode::kInvalidKey, "cannot seal to this X25519 public key");
  }
  return out;
}

std::optional<SecretBytes> open_sealed(const BoxSecretKey& recipient, ByteView sealed) {
  ensure_initialized();
  if (sealed.size() < kSealOverhead) return std::nullopt;
  SecretBytes out(sealed.size() - kSealOverhead);
  if (crypto_box_seal_open(out.data(), sealed.data(), sealed.size(),
                           recipient.public_key().bytes().data(), recipient.secret().data()) != 0) {
    return std::nullopt;
  }
  return out;
}

}  // namespace kith::crypto
