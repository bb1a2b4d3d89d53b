#include "kith/crypto/aead.hpp"

#include <sodium.h>

#include <string>

#include "kith/crypto/error.hpp"
#include "kith/crypto/init.hpp"
#include "kith/crypto/primitives.hpp"

namespace kith::crypto {

namespace {
// Both subkeys come from the section key with crypto_kdf under one context, so the key used by
// XChaCha20-Poly1305 is never also used as a BLAKE2b key.
constexpr KdfContext kAeadContext{"kithaead"};
constexpr std::uint64_t kEncryptionSubkey = 1;
constexpr std::uint64_t kCommitmentSubkey = 2;
}  // namespace

SectionKey::SectionKey(const SecretArray<kSectionKeySize>& key)
    : key_(key),
      encryption_key_(derive_subkey32(key, kEncryptionSubkey, kAeadContext)),
      commitment_key_(derive_subkey32(key, kCommitmentSubkey, kAeadContext)) {}

SectionKey SectionKey::generate() { return SectionKey(random_secret<kSectionKeySize>()); }

SectionKey SectionKey::parse(ByteView bytes) {
  return SectionKey(secret_from<kSectionKeySize>(bytes, "a section key"));
}

SectionKey SectionKey::derive(const SecretArray<32>& master, std::uint64_t id, KdfContext context) {
  return SectionKey(derive_subkey32(master, id, context));
}

Commitment commitment_tag(const SectionKey& key, ByteView nonce, ByteView ad, ByteView ciphertext) {
  // Keyed BLAKE2b-256 over nonce || u64le(len(AD)) || AD || ciphertext-with-tag. The length
  // prefix keeps the AD/ciphertext boundary unambiguous.
  crypto_generichash_state st;
  crypto_generichash_init(&st, key.commitment_key_.data(), key.commitment_key_.size(),
                          kCommitmentSize);
  crypto_generichash_update(&st, nonce.data(), nonce.size());
  std::uint8_t ad_len[8];
  for (int i = 0; i < 8; ++i) ad_len[i] = static_cast<std::uint8_t>(ad.size() >> (8 * i));
  crypto_generichash_update(&st, ad_len, sizeof ad_len);
  crypto_generichash_update(&st, ad.data(), ad.size());
  crypto_generichash_update(&st, ciphertext.data(), ciphertext.size());
  Commitment out;
  crypto_generichash_final(&st, out.data(), out.size());
  secure_wipe(&st, sizeof st);
  return out;
}

Bytes seal_with_nonce(const SectionKey& key, const Nonce& nonce, ByteView plaintext, ByteView ad) {
  ensure_initialized();
  Bytes out(kSealedOverhead + plaintext.size());
  std::uint8_t* ct = out.data() + kNonceSize + kCommitmentSize;
  unsigned long long ct_len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &ct_len, plaintext.data(), plaintext.size(),
                                             ad.data(), ad.size(), nullptr, nonce.data(),
                                             key.encryption_key_.data());
  std::copy(nonce.begin(), nonce.end(), out.begin());
  Commitment tag = commitment_tag(key, nonce, ad, ByteView(ct, ct_len));
  std::copy(tag.begin(), tag.end(), out.begin() + kNonceSize);
  return out;
}

Bytes seal(const SectionKey& key, ByteView plaintext, ByteView ad) {
  Nonce nonce;
  random_fill(nonce.data(), nonce.size());
  return seal_with_nonce(key, nonce, plaintext, ad);
}

std::optional<SecretBytes> open(const SectionKey& key, ByteView sealed, ByteView ad) {
  if (sealed.size() < kSealedOverhead) return std::nullopt;
  SecretBytes out(sealed.size() - kSealedOverhead);
  if (!open_into(key, sealed, ad, {out.data(), out.size()})) return std::nullopt;
  return out;
}

std::optional<std::size_t> open_into(const SectionKey& key, ByteView sealed, ByteView ad,
                                     std::span<std::uint8_t> out) {
  ensure_initialized();
  if (sealed.size() < kSealedOverhead) return std::nullopt;
  ByteView nonce = sealed.first(kNonceSize);
  ByteView commitment = sealed.subspan(kNonceSize, kCommitmentSize);
  ByteView ciphertext = sealed.subspan(kNonceSize + kCommitmentSize);
  const std::size_t size = ciphertext.size() - kAeadTagSize;
  if (out.size() < size) {
    throw KeyFormatError(ErrorCode::kInvalidLength,
                         "the buffer for an opened message is too short: " +
                             std::to_string(out.size()) + " bytes for " + std::to_string(size));
  }
  Commitment expected = commitment_tag(key, nonce, ad, ciphertext);
  if (crypto_verify_32(expected.data(), commitment.data()) != 0) return std::nullopt;
  unsigned long long out_len = 0;
  // libsodium checks the tag before it decrypts: on a bad tag `out` gets no plaintext.
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(out.data(), &out_len, nullptr, ciphertext.data(),
                                                 ciphertext.size(), ad.data(), ad.size(),
                                                 nonce.data(), key.encryption_key_.data()) != 0) {
    return std::nullopt;
  }
  return size;
}

}  // namespace kith::crypto
