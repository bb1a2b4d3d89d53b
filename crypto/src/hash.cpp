#include "kith/crypto/hash.hpp"

#include <sodium.h>

#include <new>
#include <string>

#include "kith/crypto/error.hpp"
#include "kith/crypto/init.hpp"

namespace kith::crypto {

namespace {
void check_out_len(std::size_t out_len) {
  if (out_len < crypto_generichash_BYTES_MIN || out_len > crypto_generichash_BYTES_MAX) {
    throw KeyFormatError(
        ErrorCode::kInvalidLength,
        "BLAKE2b output must be 16..64 bytes, asked for " + std::to_string(out_len));
  }
}
void check_key_len(std::size_t key_len) {
  if (key_len < crypto_generichash_KEYBYTES_MIN || key_len > crypto_generichash_KEYBYTES_MAX) {
    throw KeyFormatError(ErrorCode::kInvalidLength,
                         "BLAKE2b key must be 16..64 bytes, got " + std::to_string(key_len));
  }
}

static_assert(sizeof(crypto_generichash_state) <= 384);
static_assert(alignof(crypto_generichash_state) <= 64);
crypto_generichash_state* as_state(std::uint8_t* p) {
  return std::launder(reinterpret_cast<crypto_generichash_state*>(p));
}
}  // namespace

Hash blake2b(ByteView data) {
  ensure_initialized();
  Hash out;
  crypto_generichash(out.data(), out.size(), data.data(), data.size(), nullptr, 0);
  return out;
}

Bytes blake2b(ByteView data, std::size_t out_len) {
  ensure_initialized();
  check_out_len(out_len);
  Bytes out(out_len);
  crypto_generichash(out.data(), out.size(), data.data(), data.size(), nullptr, 0);
  return out;
}

Bytes blake2b_keyed(ByteView key, ByteView data, std::size_t out_len) {
  ensure_initialized();
  check_out_len(out_len);
  check_key_len(key.size());
  Bytes out(out_len);
  crypto_generichash(out.data(), out.size(), data.data(), data.size(), key.data(), key.size());
  return out;
}

Blake2b::Blake2b(std::size_t out_len) : out_len_(out_len) {
  ensure_initialized();
  check_out_len(out_len);
  crypto_generichash_init(as_state(state_.data()), nullptr, 0, out_len);
}

Blake2b::Blake2b(ByteView key, std::size_t out_len) : out_len_(out_len) {
  ensure_initialized();
  check_out_len(out_len);
  check_key_len(key.size());
  crypto_generichash_init(as_state(state_.data()), key.data(), key.size(), out_len);
}

// The state of a keyed hash holds key material.
Blake2b::~Blake2b() { secure_wipe(state_.data(), state_.size()); }

Blake2b& Blake2b::update(ByteView data) {
  crypto_generichash_update(as_state(state_.data()), data.data(), data.size());
  return *this;
}

Bytes Blake2b::finish() {
  Bytes out(out_len_);
  crypto_generichash_final(as_state(state_.data()), out.data(), out.size());
  return out;
}

SecretArray<32> derive_subkey32(const SecretArray<32>& master, std::uint64_t id,
                                KdfContext context) {
  ensure_initialized();
  SecretArray<32> out;
  crypto_kdf_derive_from_key(out.data(), out.size(), id, context.c_str(), master.data());
  return out;
}

}  // namespace kith::crypto
