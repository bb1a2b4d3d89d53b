// Errors raised by kith_crypto.
//
// Real failures (a malformed key, a corrupt key file, a mistyped recovery key) are exceptions
// derived from CryptoError, each with a stable code that callers map to the codes they send to
// people and peers. Expected negative outcomes — a signature that does not verify, a ciphertext
// that does not open — are values (`bool`, `std::optional`), never exceptions.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace kith::crypto {

enum class ErrorCode {
  kInitFailed,           // libsodium could not be initialised
  kInvalidLength,        // a key, nonce, signature or buffer has the wrong size
  kInvalidEncoding,      // hex, label or structure could not be parsed
  kInvalidKey,           // the bytes have the right size but are not a usable key
  kWrongPassphrase,      // the key file is intact but the passphrase does not open it
  kCorruptKeyFile,       // the key file is damaged or truncated
  kUnsupportedFormat,    // a key file or structure from a newer or unknown version
  kRecoveryKeyFormat,    // the recovery key has the wrong shape (characters, groups)
  kRecoveryKeyTypo,      // one group of the recovery key does not match its check character
  kRecoveryKeyChecksum,  // every group checks, but the whole key does not
  kIo,                   // reading or writing a key file failed
};

// Stable, lower-case identifier for a code, e.g. "wrong_passphrase".
std::string_view error_code_name(ErrorCode code) noexcept;

class CryptoError : public std::runtime_error {
 public:
  CryptoError(ErrorCode code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

// A key, signature or structure that cannot be parsed from its bytes.
class KeyFormatError : public CryptoError {
 public:
  using CryptoError::CryptoError;
};

// Opening or writing a passphrase-sealed key file failed.
class KeyStoreError : public CryptoError {
 public:
  using CryptoError::CryptoError;
};

// A recovery key that was mistyped or is not a recovery key. `group()` is the 1-based group a
// person should look at again, or 0 when the problem is not in one group.
class RecoveryKeyError : public CryptoError {
 public:
  RecoveryKeyError(ErrorCode code, const std::string& message, int group = 0)
      : CryptoError(code, message), group_(group) {}
  int group() const noexcept { return group_; }

 private:
  int group_;
};

}  // namespace kith::crypto
