#include "tty.hpp"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>

namespace kith::cli {

Tty::Tty() : fd_(::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)) {}

Tty::~Tty() {
  if (fd_ >= 0) ::close(fd_);
}

std::optional<crypto::SecretBytes> Tty::ask(std::string_view prompt, bool echo) {
  // Echo goes off before the prompt appears: whatever is typed (or pasted) once it shows is
  // neither echoed nor discarded by the flush that switching echo off does.
  termios old{};
  const bool quiet = !echo && ::tcgetattr(fd_, &old) == 0;
  if (quiet) {
    termios q = old;
    q.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    q.c_lflag |= ECHONL;
    ::tcsetattr(fd_, TCSAFLUSH, &q);
  }
  write(prompt);
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
  if (quiet) ::tcsetattr(fd_, TCSAFLUSH, &old);
  if (eof) return std::nullopt;
  return crypto::SecretBytes(crypto::ByteView(line.data(), n));
}

void Tty::write(std::string_view text) {
  while (!text.empty()) {
    const ssize_t r = ::write(fd_, text.data(), text.size());
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return;
    text.remove_prefix(static_cast<std::size_t>(r));
  }
}

}  // namespace kith::cli
