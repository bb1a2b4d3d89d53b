// Private keys at rest, sealed under a key derived from a passphrase with Argon2id
// (crypto_pwhash). The Argon2id parameters and salt are stored in the file, so a file written
// with one setting opens on a device that defaults to another. Layout: docs/PROTOCOL.md,
// "Key files".
//
// Failures are distinct: a damaged file (KeyStoreError kCorruptKeyFile), a wrong passphrase
// (kWrongPassphrase), a newer format (kUnsupportedFormat). A failed load never modifies the file;
// a save replaces it atomically (write, fsync, rename), so a crash leaves either the old or the
// new file. A KeyStore object is not synchronised; use one per thread or lock around it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>

#include "kith/crypto/bytes.hpp"
#include "kith/crypto/secret.hpp"

namespace kith::crypto {

struct PwhashParams {
  std::uint64_t opslimit;
  std::uint64_t memlimit;  // bytes

  // Sized for a mid-range phone: 3 passes over 64 MiB, well under the 1 GiB "sensitive"
  // preset that phones cannot afford. Measured by bench/ (BM_KeyFileOpen_PhoneDefault) at about
  // 0.1 s on a 2.1 GHz server core; expect a few times that on a phone's core.
  static PwhashParams phone();
  // libsodium's minimum: for tests only, never for real keys.
  static PwhashParams minimum_for_tests();
};

// Upper bounds accepted when opening a file, so that a crafted file cannot make a device spend
// minutes or gigabytes deriving a key.
inline constexpr std::uint64_t kMaxOpslimit = 16;
inline constexpr std::uint64_t kMaxMemlimit = 1ull << 30;

// Seals `payload` into the bytes of a key file.
Bytes seal_key_file(const SecretBytes& payload, std::string_view passphrase,
                    const PwhashParams& params);
// Opens the bytes of a key file. Throws KeyStoreError.
SecretBytes open_key_file(ByteView file, std::string_view passphrase);

class KeyStore {
 public:
  explicit KeyStore(std::filesystem::path path) : path_(std::move(path)) {}

  const std::filesystem::path& path() const noexcept { return path_; }
  bool exists() const;
  // Atomically replaces the file (mode 0600). Throws KeyStoreError(kIo).
  void save(const SecretBytes& payload, std::string_view passphrase,
            const PwhashParams& params = PwhashParams::phone()) const;
  // Throws KeyStoreError: kIo when unreadable, otherwise as open_key_file().
  SecretBytes load(std::string_view passphrase) const;
  // Opens with `old_passphrase` and re-seals with `new_passphrase`; the file is unchanged if
  // the old passphrase is wrong.
  void change_passphrase(std::string_view old_passphrase, std::string_view new_passphrase,
                         const PwhashParams& params = PwhashParams::phone()) const;

 private:
  std::filesystem::path path_;
};

}  // namespace kith::crypto
