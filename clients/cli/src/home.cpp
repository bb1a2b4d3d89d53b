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
    throw CliError(Exit::kKeys, "not_initialised", "no Kith identity in " + dir_.string(),
                   "run `kith init --name NAME` first");
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
    throw CliError(Exit::kKeys, "not_initialised", "no device description in " + dir_.string(),
                   "run `kith init --name NAME`");
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

namespace {

int open_lock_file(const fs::path& file) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw CliError(Exit::kFailed, "home_io",
                   "cannot open " + file.string() + ": " + std::strerror(errno));
  }
  return fd;
}

constexpr std::chrono::milliseconds kLockPoll{50};

}  // namespace

HomeLock::HomeLock(const Home& home) : home_(home) {
  fd_ = open_lock_file(home.lock_file());
  try {
    wait_fd_ = open_lock_file(home.wait_file());
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

HomeLock::HomeLock(const Home& home, int wait_ms) : HomeLock(home) {
  // From here the object is built: if this body throws, the destructor closes both files.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  bool announced = false;
  while (!try_lock()) {
    // Shared, so that any number of waiters can say so; it may fail for the moment the holder
    // looks (others_waiting), and is tried again.
    if (!announced) announced = ::flock(wait_fd_, LOCK_SH | LOCK_NB) == 0;
    if (std::chrono::steady_clock::now() >= deadline) {
      throw CliError(Exit::kFailed, "home_busy",
                     "another kith command is using " + home.dir().string() +
                         "; try again when it has finished");
    }
    std::this_thread::sleep_for(kLockPoll);
  }
  if (announced) ::flock(wait_fd_, LOCK_UN);
}

std::unique_ptr<HomeLock> HomeLock::wait_behind_others(const Home& home,
                                                       const std::function<bool()>& stop) {
  std::unique_ptr<HomeLock> lock(new HomeLock(home));
  while (!stop()) {
    if (!lock->others_waiting() && lock->try_lock()) return lock;
    std::this_thread::sleep_for(kLockPoll);
  }
  return nullptr;
}

bool HomeLock::try_lock() {
  if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return true;
  if (errno == EWOULDBLOCK || errno == EINTR) return false;
  throw CliError(Exit::kFailed, "home_io",
                 "cannot lock " + home_.lock_file().string() + ": " + std::strerror(errno));
}

bool HomeLock::others_waiting() const {
  // An exclusive lock on the wait file is refused exactly while someone holds a shared one.
  if (::flock(wait_fd_, LOCK_EX | LOCK_NB) == 0) {
    ::flock(wait_fd_, LOCK_UN);
    return false;
  }
  return errno == EWOULDBLOCK;
}

HomeLock::~HomeLock() {
  // Closing releases the locks.
  if (wait_fd_ >= 0) ::close(wait_fd_);
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace kith::cli
