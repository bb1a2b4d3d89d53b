#include "kith/crypto/key_store.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>

#include "kith/crypto/error.hpp"
#include "kith/crypto/hash.hpp"
#include "kith/crypto/init.hpp"

namespace kith::crypto {

namespace {

constexpr std::array<std::uint8_t, 8> kMagic = {'K', 'I', 'T', 'H', 'K', 'E', 'Y', 'S'};
constexpr std::uint8_t kFormatVersion = 1;
constexpr std::uint8_t kAlgArgon2id13 = 2;  // crypto_pwhash_ALG_ARGON2ID13
constexpr std::size_t kSaltSize = crypto_pwhash_SALTBYTES;
constexpr std::size_t kNonceSize = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t kTagSize = crypto_aead_xchacha20poly1305_ietf_ABYTES;
// magic, version, algorithm, opslimit, memlimit, salt, nonce, u32 ciphertext length
constexpr std::size_t kHeaderSize = 8 + 1 + 1 + 8 + 8 + kSaltSize + kNonceSize + 4;
constexpr std::size_t kChecksumSize = 32;
constexpr std::size_t kMaxPayload = 64 * 1024;
constexpr std::size_t kMaxFileSize = kHeaderSize + kMaxPayload + kTagSize + kChecksumSize;

static_assert(crypto_pwhash_ALG_ARGON2ID13 == kAlgArgon2id13);
static_assert(kSaltSize == 16);

[[noreturn]] void corrupt(const std::string& why) {
  throw KeyStoreError(
      ErrorCode::kCorruptKeyFile,
      "the key file is damaged (" + why + "); restore it from a backup or use your recovery key");
}

SecretArray<32> derive_file_key(std::string_view passphrase, ByteView salt, std::uint64_t opslimit,
                                std::uint64_t memlimit) {
  SecretArray<32> key;
  if (crypto_pwhash(key.data(), key.size(), passphrase.data(), passphrase.size(), salt.data(),
                    opslimit, static_cast<std::size_t>(memlimit),
                    crypto_pwhash_ALG_ARGON2ID13) != 0) {
    throw KeyStoreError(ErrorCode::kIo, "not enough memory to derive the key-file key (needs " +
                                            std::to_string(memlimit >> 20) + " MiB)");
  }
  return key;
}

void check_params(const PwhashParams& p) {
  if (p.opslimit < crypto_pwhash_OPSLIMIT_MIN || p.opslimit > kMaxOpslimit ||
      p.memlimit < crypto_pwhash_MEMLIMIT_MIN || p.memlimit > kMaxMemlimit) {
    throw KeyStoreError(ErrorCode::kInvalidLength,
                        "Argon2id parameters out of range: opslimit must be 1.." +
                            std::to_string(kMaxOpslimit) + ", memlimit 8 KiB..1 GiB");
  }
}

[[noreturn]] void io_error(const std::string& what, const std::filesystem::path& path) {
  throw KeyStoreError(ErrorCode::kIo, what + " " + path.string() + ": " + std::strerror(errno));
}

}  // namespace

PwhashParams PwhashParams::phone() { return {3, 64ull << 20}; }

PwhashParams PwhashParams::minimum_for_tests() {
  return {crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN};
}

Bytes seal_key_file(const SecretBytes& payload, std::string_view passphrase,
                    const PwhashParams& params) {
  ensure_initialized();
  check_params(params);
  if (payload.size() > kMaxPayload) {
    throw KeyStoreError(ErrorCode::kInvalidLength, "a key file holds at most 64 KiB");
  }
  std::array<std::uint8_t, kSaltSize> salt;
  std::array<std::uint8_t, kNonceSize> nonce;
  random_fill(salt.data(), salt.size());
  random_fill(nonce.data(), nonce.size());

  ByteWriter w(kHeaderSize + payload.size() + kTagSize + kChecksumSize);
  w.raw(kMagic)
      .u8(kFormatVersion)
      .u8(kAlgArgon2id13)
      .u64(params.opslimit)
      .u64(params.memlimit)
      .raw(salt)
      .raw(nonce)
      .u32(static_cast<std::uint32_t>(payload.size() + kTagSize));
  Bytes out = std::move(w).take();

  SecretArray<32> key = derive_file_key(passphrase, salt, params.opslimit, params.memlimit);
  std::size_t header_end = out.size();
  out.resize(header_end + payload.size() + kTagSize);
  unsigned long long ct_len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out.data() + header_end, &ct_len, payload.data(),
                                             payload.size(), out.data(), header_end, nullptr,
                                             nonce.data(), key.data());
  Hash checksum = blake2b(out);
  out.insert(out.end(), checksum.begin(), checksum.end());
  return out;
}

SecretBytes open_key_file(ByteView file, std::string_view passphrase) {
  ensure_initialized();
  if (file.size() < kMagic.size() || !std::equal(kMagic.begin(), kMagic.end(), file.begin())) {
    corrupt("it is not a Kith key file");
  }
  if (file.size() < kHeaderSize + kTagSize + kChecksumSize) corrupt("it is truncated");
  ByteReader r(file, "key file");
  r.raw(kMagic.size());
  std::uint8_t version = r.u8();
  if (version != kFormatVersion) {
    throw KeyStoreError(ErrorCode::kUnsupportedFormat,
                        "the key file has format version " + std::to_string(version) +
                            ", which this version of Kith cannot read; update the app");
  }
  ByteView body = file.first(file.size() - kChecksumSize);
  Hash expected = blake2b(body);
  if (!constant_time_equal(expected, file.last(kChecksumSize))) {
    corrupt("its checksum does not match");
  }
  std::uint8_t alg = r.u8();
  if (alg != kAlgArgon2id13) {
    throw KeyStoreError(ErrorCode::kUnsupportedFormat,
                        "the key file uses key-derivation algorithm " + std::to_string(alg) +
                            ", which this version of Kith cannot read; update the app");
  }
  PwhashParams params{r.u64(), r.u64()};
  if (params.opslimit < crypto_pwhash_OPSLIMIT_MIN || params.opslimit > kMaxOpslimit ||
      params.memlimit < crypto_pwhash_MEMLIMIT_MIN || params.memlimit > kMaxMemlimit) {
    corrupt("its Argon2id parameters are out of range");
  }
  ByteView salt = r.raw(kSaltSize);
  ByteView nonce = r.raw(kNonceSize);
  std::uint32_t ct_len = r.u32();
  if (ct_len != body.size() - kHeaderSize) corrupt("its length field does not match its size");
  ByteView ciphertext = r.raw(ct_len);

  SecretArray<32> key = derive_file_key(passphrase, salt, params.opslimit, params.memlimit);
  SecretBytes out(ct_len - kTagSize);
  unsigned long long out_len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(out.data(), &out_len, nullptr, ciphertext.data(),
                                                 ciphertext.size(), file.data(), kHeaderSize,
                                                 nonce.data(), key.data()) != 0) {
    throw KeyStoreError(ErrorCode::kWrongPassphrase,
                        "the passphrase is wrong; try again (the key file was not changed)");
  }
  return out;
}

bool KeyStore::exists() const {
  std::error_code ec;
  return std::filesystem::exists(path_, ec);
}

void KeyStore::save(const SecretBytes& payload, std::string_view passphrase,
                    const PwhashParams& params) const {
  Bytes file = seal_key_file(payload, passphrase, params);
  // Write a sibling file, flush it to disk, then rename over the old one: a crash at any
  // point leaves either the complete old file or the complete new one.
  std::filesystem::path tmp = path_;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) io_error("cannot create", tmp);
  std::size_t done = 0;
  while (done < file.size()) {
    ssize_t n = ::write(fd, file.data() + done, file.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      io_error("cannot write", tmp);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    ::unlink(tmp.c_str());
    io_error("cannot flush", tmp);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    ::unlink(tmp.c_str());
    io_error("cannot replace", path_);
  }
  std::filesystem::path dir = path_.parent_path().empty() ? "." : path_.parent_path();
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

SecretBytes KeyStore::load(std::string_view passphrase) const {
  int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) io_error("cannot open key file", path_);
  Bytes file;
  std::array<std::uint8_t, 4096> buf;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      io_error("cannot read key file", path_);
    }
    if (n == 0) break;
    file.insert(file.end(), buf.begin(), buf.begin() + n);
    if (file.size() > kMaxFileSize) {
      ::close(fd);
      corrupt("it is larger than any Kith key file");
    }
  }
  ::close(fd);
  return open_key_file(file, passphrase);
}

void KeyStore::change_passphrase(std::string_view old_passphrase, std::string_view new_passphrase,
                                 const PwhashParams& params) const {
  SecretBytes payload = load(old_passphrase);
  save(payload, new_passphrase, params);
}

}  // namespace kith::crypto
