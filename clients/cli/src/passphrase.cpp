#include "kith/cli/passphrase.hpp"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "kith/cli/error.hpp"
#include "kith/crypto/bytes.hpp"

namespace kith::cli {
namespace {

// The terminal, if this process has one: /dev/tty rather than stdin, so a prompt still reaches a
// person when stdin or stdout are redirected.
class Tty {
 public:
  Tty() : fd_(::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)) {}
  ~Tty() {
    if (fd_ >= 0) ::close(fd_);
  }
  Tty(const Tty&) = delete;
  Tty& operator=(const Tty&) = delete;
  bool ok() const noexcept { return fd_ >= 0; }

  // Reads one line without echo. The line is kept in wiped memory only.
  crypto::SecretBytes ask(std::string_view prompt) {
    write(prompt);
    termios old{};
    const bool have_termios = ::tcgetattr(fd_, &old) == 0;
    if (have_termios) {
      termios quiet = old;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      quiet.c_lflag |= ECHONL;
      ::tcsetattr(fd_, TCSAFLUSH, &quiet);
    }
    crypto::SecretBytes line(1024);
    std::size_t n = 0;
    bool eof = false;
    for (;;) {
      char c = 0;
      const ssize_t r = ::read(fd_, &c, 1);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        eof = n == 0;
        break;
      }
      if (c == '\n' || c == '\r') break;
      if (n < line.size()) line.data()[n++] = static_cast<std::uint8_t>(c);
      c = 0;
    }
    if (have_termios) ::tcsetattr(fd_, TCSAFLUSH, &old);
    if (eof) {
      throw CliError(Exit::kKeys, "no_passphrase", "no passphrase was entered");
    }
    return crypto::SecretBytes(crypto::ByteView(line.data(), n));
  }

  void write(std::string_view text) {
    while (!text.empty()) {
      const ssize_t r = ::write(fd_, text.data(), text.size());
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return;
      text.remove_prefix(static_cast<std::size_t>(r));
    }
  }

 private:
  int fd_;
};

}  // namespace

Passphrase read_passphrase(const Environment& env, std::string_view prompt, bool confirm) {
  if (auto from_env = env.get("KITH_PASSPHRASE")) {
    Passphrase p(crypto::SecretBytes(crypto::as_bytes(*from_env)));
    crypto::secure_wipe(from_env->data(), from_env->size());
    return p;
  }
  Tty tty;
  if (!tty.ok()) {
    throw CliError(Exit::kKeys, "no_passphrase",
                   "a passphrase is needed: set KITH_PASSPHRASE or run kith on a terminal");
  }
  Passphrase first(tty.ask(prompt));
  if (first.empty()) {
    throw CliError(Exit::kKeys, "empty_passphrase", "the passphrase must not be empty");
  }
  if (confirm) {
    Passphrase again(tty.ask("Repeat the passphrase: "));
    if (!crypto::constant_time_equal(crypto::as_bytes(first.view()),
                                     crypto::as_bytes(again.view()))) {
      throw CliError(Exit::kKeys, "passphrase_mismatch", "the two passphrases differ");
    }
  }
  return first;
}

}  // namespace kith::cli
