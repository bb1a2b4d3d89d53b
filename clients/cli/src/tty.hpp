// The terminal, if this process has one: /dev/tty rather than stdin, so a question still reaches
// a person when stdin or stdout are redirected, and a script (no controlling terminal) is never
// asked anything. Internal to kith_cli_core; used for the passphrase and for confirmations.
#pragma once

#include <optional>
#include <string_view>

#include "kith/crypto/secret.hpp"

namespace kith::cli {

class Tty {
 public:
  Tty();
  ~Tty();
  Tty(const Tty&) = delete;
  Tty& operator=(const Tty&) = delete;
  bool ok() const noexcept { return fd_ >= 0; }

  // Writes `prompt` and reads one line (without its end), with or without echo. The line is kept
  // in wiped memory only. nullopt at end of input before anything was typed.
  std::optional<crypto::SecretBytes> ask(std::string_view prompt, bool echo = false);
  void write(std::string_view text);

 private:
  int fd_;
};

}  // namespace kith::cli
