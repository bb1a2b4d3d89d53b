#include "kith/crypto/error.hpp"

namespace kith::crypto {

std::string_view error_code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInitFailed:
      return "init_failed";
    case ErrorCode::kInvalidLength:
      return "invalid_length";
    case ErrorCode::kInvalidEncoding:
      return "invalid_encoding";
    case ErrorCode::kInvalidKey:
      return "invalid_key";
    case ErrorCode::kWrongPassphrase:
      return "wrong_passphrase";
    case ErrorCode::kCorruptKeyFile:
      return "corrupt_key_file";
    case ErrorCode::kUnsupportedFormat:
      return "unsupported_format";
    case ErrorCode::kRecoveryKeyFormat:
      return "recovery_key_format";
    case ErrorCode::kRecoveryKeyTypo:
      return "recovery_key_typo";
    case ErrorCode::kRecoveryKeyChecksum:
      return "recovery_key_checksum";
    case ErrorCode::kIo:
      return "io_error";
  }
  return "unknown";
}

}  // namespace kith::crypto
