#include "kith/cli/home.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "kith/cli/error.hpp"
#include "kith/cli/files.hpp"

namespace kith::cli {
namespace fs = std::filesystem;

Home Home::locate(const std::string& flag, const Environment& env) {
  if (!flag.empty()) return Home(flag);
  if (auto h = env.get("KITH_HOME")) return Home(*h);
  if (auto h = env.get("HOME")) return Home(fs::path(*h) / ".kith");
  throw CliError(Exit::kUsage, "no_home", "no home directory: give --home DIR or set KITH_HOME");
}

bool Home::initialised() const {
  std::error_code ec;
  return fs::exists(key_file(), ec);
}

void Home::require_initialised() const {
  if (!initialised()) {
    throw CliError(Exit::kKeys, "not_initialised",
                   "no Kith identity in " + dir_.string() + "; run `kith init --name NAME` first");
  }
}

void Home::create() const {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) {
    throw CliError(Exit::kFailed, "home_io",
                   "cannot create " + dir_.string() + ": " + ec.message());
  }
  fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::replace, ec);
  if (ec) {
    throw CliError(Exit::kFailed, "home_io",
                   "cannot restrict " + dir_.string() + " to its owner: " + ec.message());
  }
}

DeviceInfo Home::read_info() const {
  std::ifstream in(info_file());
  if (!in) {
    throw CliError(Exit::kKeys, "not_initialised",
                   "no device description in " + dir_.string() + "; run `kith init --name NAME`");
  }
  try {
    auto j = nlohmann::json::parse(in);
    DeviceInfo info;
    info.name = j.at("name").get<std::string>();
    info.account = j.at("account").get<std::string>();
    info.device = j.at("device").get<std::string>();
    info.issued_at = j.at("certificate_issued_at").get<std::uint64_t>();
    return info;
  } catch (const nlohmann::json::exception& e) {
    throw CliError(Exit::kKeys, "corrupt_home",
                   info_file().string() + " is damaged (" + e.what() + ")");
  }
}

void Home::write_info(const DeviceInfo& info) const {
  nlohmann::json j{{"name", info.name},
                   {"account", info.account},
                   {"device", info.device},
                   {"certificate_issued_at", info.issued_at}};
  write_private_file(info_file(), j.dump(2) + "\n", /*replace=*/true, "home_io");
}

HomeLock::HomeLock(const Home& home, int wait_ms) {
  fd_ = ::open(home.lock_file().c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    throw CliError(Exit::kFailed, "home_io",
                   "cannot open " + home.lock_file().string() + ": " + std::strerror(errno));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      const std::string why = std::strerror(errno);
      ::close(fd_);
      throw CliError(Exit::kFailed, "home_io",
                     "cannot lock " + home.lock_file().string() + ": " + why);
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::close(fd_);
      throw CliError(Exit::kFailed, "home_busy",
                     "another kith command is using " + home.dir().string() +
                         " (is `kith watch` running there?); try again when it has finished");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

HomeLock::~HomeLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

}  // namespace kith::cli
