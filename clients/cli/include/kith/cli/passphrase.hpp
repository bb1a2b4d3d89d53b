// Where the passphrase comes from: KITH_PASSPHRASE (for scripts), otherwise the terminal
// (/dev/tty, without echo). It is held in wiped memory and never printed or logged.
#pragma once

#include <string_view>

#include "kith/cli/environment.hpp"
#include "kith/crypto/secret.hpp"

namespace kith::cli {

class Passphrase {
 public:
  explicit Passphrase(crypto::SecretBytes bytes) : bytes_(std::move(bytes)) {}
  std::string_view view() const noexcept {
    return {reinterpret_cast<const char*>(bytes_.data()), bytes_.size()};
  }
  bool empty() const noexcept { return bytes_.empty(); }

 private:
  crypto::SecretBytes bytes_;
};

// KITH_PASSPHRASE, or asked on the terminal with `prompt` (and asked again to confirm when
// `confirm`, for a new passphrase). Throws CliError: no_passphrase when there is neither,
// passphrase_mismatch when the two entries differ, empty_passphrase for an empty one.
Passphrase read_passphrase(const Environment& env, std::string_view prompt, bool confirm);

}  // namespace kith::cli
