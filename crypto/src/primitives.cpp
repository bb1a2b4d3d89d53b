#include "kith/crypto/primitives.hpp"

#include <sodium.h>

#include "kith/crypto/error.hpp"
#include "kith/crypto/init.hpp"

namespace kith::crypto::primitive {

static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == kXChaChaKeySize);
static_assert(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES == kXChaChaNonceSize);
static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == kXChaChaTagSize);

Signature ed25519_sign(const SigningKey& key, ByteView message) {
  Signature sig;
  crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), key.expanded_.data());
  return sig;
}

bool ed25519_verify(ByteView public_key, ByteView message, ByteView signature) {
  ensure_initialized();
  if (public_key.size() != crypto_sign_PUBLICKEYBYTES || signature.size() != crypto_sign_BYTES) {
    return false;
  }
  return crypto_sign_verify_detached(signature.data(), message.data(), message.size(),
                                     public_key.data()) == 0;
}

std::optional<SecretArray<32>> x25519(ByteView private_key, ByteView public_key) {
  ensure_initialized();
  auto sk = secret_from<crypto_scalarmult_SCALARBYTES>(private_key, "an X25519 private key");
  if (public_key.size() != crypto_scalarmult_BYTES) {
    throw KeyFormatError(ErrorCode::kInvalidLength, "an X25519 public key must be 32 bytes");
  }
  SecretArray<32> shared;
  if (crypto_scalarmult(shared.data(), sk.data(), public_key.data()) != 0) return std::nullopt;
  return shared;
}

Bytes x25519_base(ByteView private_key) {
  ensure_initialized();
  auto sk = secret_from<crypto_scalarmult_SCALARBYTES>(private_key, "an X25519 private key");
  Bytes pk(crypto_scalarmult_BYTES);
  crypto_scalarmult_base(pk.data(), sk.data());
  return pk;
}

namespace {
void check_key_and_nonce(ByteView key, ByteView nonce) {
  if (key.size() != kXChaChaKeySize) {
    throw KeyFormatError(ErrorCode::kInvalidLength, "an XChaCha20-Poly1305 key must be 32 bytes");
  }
  if (nonce.size() != kXChaChaNonceSize) {
    throw KeyFormatError(ErrorCode::kInvalidLength, "an XChaCha20-Poly1305 nonce must be 24 bytes");
  }
}
}  // namespace

Bytes xchacha20poly1305_encrypt(ByteView key, ByteView nonce, ByteView ad, ByteView plaintext) {
  ensure_initialized();
  check_key_and_nonce(key, nonce);
  Bytes out(plaintext.size() + kXChaChaTagSize);
  unsigned long long out_len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out.data(), &out_len, plaintext.data(),
                                             plaintext.size(), ad.data(), ad.size(), nullptr,
                                             nonce.data(), key.data());
  out.resize(out_len);
  return out;
}

std::optional<SecretBytes> xchacha20poly1305_decrypt(ByteView key, ByteView nonce, ByteView ad,
                                                     ByteView ciphertext_and_tag) {
  ensure_initialized();
  check_key_and_nonce(key, nonce);
  if (ciphertext_and_tag.size() < kXChaChaTagSize) return std::nullopt;
  SecretBytes out(ciphertext_and_tag.size() - kXChaChaTagSize);
  unsigned long long out_len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          out.data(), &out_len, nullptr, ciphertext_and_tag.data(), ciphertext_and_tag.size(),
          ad.data(), ad.size(), nonce.data(), key.data()) != 0) {
    return std::nullopt;
  }
  return out;
}

}  // namespace kith::crypto::primitive
