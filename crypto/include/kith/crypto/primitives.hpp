// The bare libsodium primitives under the typed wrappers, with no labels, subkeys or
// commitment. They exist so known-answer tests (RFC 8032, RFC 7748, Project Wycheproof) can
// check the exact primitives Kith links against. Product code uses sign.hpp, box.hpp and
// aead.hpp instead: an unlabelled signature or an uncommitted ciphertext is not a Kith format.
#pragma once

#include <optional>

#include "kith/crypto/bytes.hpp"
#include "kith/crypto/secret.hpp"
#include "kith/crypto/sign.hpp"

namespace kith::crypto::primitive {

inline constexpr std::size_t kXChaChaKeySize = 32;
inline constexpr std::size_t kXChaChaNonceSize = 24;
inline constexpr std::size_t kXChaChaTagSize = 16;

// Plain Ed25519 (RFC 8032) over `message`, without a Kith label.
Signature ed25519_sign(const SigningKey& key, ByteView message);
// Any public key or signature length is accepted as input; wrong lengths verify false.
[[nodiscard]] bool ed25519_verify(ByteView public_key, ByteView message, ByteView signature);

// X25519 (RFC 7748). nullopt when libsodium refuses the point (an all-zero shared secret from a
// low-order public key); throws KeyFormatError for wrong key lengths.
std::optional<SecretArray<32>> x25519(ByteView private_key, ByteView public_key);
// The X25519 public key for a private key.
Bytes x25519_base(ByteView private_key);

// XChaCha20-Poly1305-IETF with a caller-chosen nonce. Output is ciphertext || 16-byte tag.
// Throws KeyFormatError for a wrong key or nonce length.
Bytes xchacha20poly1305_encrypt(ByteView key, ByteView nonce, ByteView ad, ByteView plaintext);
// nullopt when the tag does not verify; throws KeyFormatError for a wrong key or nonce length.
std::optional<SecretBytes> xchacha20poly1305_decrypt(ByteView key, ByteView nonce, ByteView ad,
                                                     ByteView ciphertext_and_tag);

}  // namespace kith::crypto::primitive
