#include "kith/cli/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "kith/cli/error.hpp"

namespace kith::cli {

void write_private_file(const std::filesystem::path& path, std::string_view text, bool replace,
                        const std::string& io_code) {
  std::string tmp = path.string() + ".tmp-XXXXXX";
  const int fd = ::mkstemp(tmp.data());  // 0600, O_EXCL
  auto fail = [&](const char* what) {
    const std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    if (fd >= 0) ::unlink(tmp.c_str());
    throw CliError(Exit::kFailed, io_code,
                   std::string("cannot ") + what + " " + path.string() + ": " + why);
  };
  if (fd < 0) fail("create a file beside");
  if (::fchmod(fd, 0600) != 0) fail("restrict");
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("write");
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) fail("sync");
  ::close(fd);
  const int rc = replace ? ::rename(tmp.c_str(), path.c_str()) : ::link(tmp.c_str(), path.c_str());
  const int err = errno;
  if (rc != 0 || !replace) ::unlink(tmp.c_str());
  if (rc == 0) return;
  if (!replace && err == EEXIST) {
    throw CliError(Exit::kFailed, "file_exists", path.string() + " already exists",
                   "add --force to replace it");
  }
  throw CliError(Exit::kFailed, io_code,
                 "cannot write " + path.string() + ": " + std::strerror(err));
}

std::string read_file(const std::filesystem::path& path, std::size_t limit) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      throw CliError(Exit::kNotFound, "no_such_file", "no file " + path.string());
    }
    throw CliError(Exit::kFailed, "file_io",
                   "cannot open " + path.string() + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw CliError(Exit::kFailed, "file_io", path.string() + " is not a regular file");
  }
  auto too_large = [&] {
    ::close(fd);
    throw CliError(Exit::kUsage, "file_too_large",
                   path.string() + " is larger than " + std::to_string(limit / (1024 * 1024)) +
                       " MiB; a plan's bundle is far smaller");
  };
  if (static_cast<std::uint64_t>(st.st_size) > limit) too_large();
  std::string out;
  out.reserve(static_cast<std::size_t>(st.st_size));
  char buf[65536];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      throw CliError(Exit::kFailed, "file_io", "cannot read " + path.string() + ": " + why);
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > limit) too_large();  // it grew while being read
  }
  ::close(fd);
  return out;
}

}  // namespace kith::cli
