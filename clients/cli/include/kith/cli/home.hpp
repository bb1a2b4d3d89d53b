// The kith home directory (KITH_HOME, default ~/.kith): one person's device.
//
//   keys         the key store: identity and device keys sealed under the passphrase (0600)
//   device.json  what is not secret: display name, account and device ids, when the device
//                certificate was issued (so the same certificate is re-made on every start)
//   store.db     the LocalStore (plans, ops, keys, state; sealed under the device storage key)
//   lock         flock()ed by every command that changes the store, so two `kith` processes
//                never author into the same chain at once
//   lock.wait    flock()ed (shared) by each process waiting for `lock`, so that a long-running
//                holder (`kith watch`) can tell it is wanted and let go (HomeLock)
//
// The directory is created with mode 0700. Nothing here prompts or prints: see passphrase.hpp
// for the passphrase and device.hpp for opening the store.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "kith/cli/environment.hpp"

namespace kith::cli {

// The name of a device restored from the recovery key without --name: the person's own name
// is then not known here, and is not shared (SyncEngine::share_name_as).
inline constexpr std::string_view kUnnamedDevice = "another device";

struct DeviceInfo {
  std::string name;             // what `kith init --name` was given
  std::string account;          // hex
  std::string device;           // hex
  std::uint64_t issued_at = 0;  // the device certificate's issued_at (Unix ms)
};

class Home {
 public:
  explicit Home(std::filesystem::path dir) : dir_(std::move(dir)) {}

  // --home, else KITH_HOME, else $HOME/.kith. Throws CliError(usage) when none can be found.
  static Home locate(const std::string& flag, const Environment& env);

  const std::filesystem::path& dir() const noexcept { return dir_; }
  std::filesystem::path key_file() const { return dir_ / "keys"; }
  std::filesystem::path info_file() const { return dir_ / "device.json"; }
  std::filesystem::path store_file() const { return dir_ / "store.db"; }
  std::filesystem::path lock_file() const { return dir_ / "lock"; }
  std::filesystem::path wait_file() const { return dir_ / "lock.wait"; }

  // True when `kith init` has run here (the key file exists).
  bool initialised() const;
  // Throws CliError(not_initialised) unless initialised().
  void require_initialised() const;
  // Creates the directory (and parents) with mode 0700; tightens an existing one to 0700.
  void create() const;

  // Throws CliError(not_initialised / corrupt_home) when missing or unreadable.
  DeviceInfo read_info() const;
  // Atomically (write, fsync, rename), mode 0600.
  void write_info(const DeviceInfo& info) const;

 private:
  std::filesystem::path dir_;
};

// An exclusive flock() on the home's lock file, held for the object's lifetime. Waits up to
// `wait_ms` for another kith process to let go, then throws CliError(home_busy). While it waits
// it holds a shared flock() on the home's wait file, which the holder sees as others_waiting():
// `kith watch`, which would otherwise hold the lock for hours, lets go then and takes it back
// with wait_behind_others().
class HomeLock {
 public:
  HomeLock(const Home& home, int wait_ms);
  ~HomeLock();
  HomeLock(const HomeLock&) = delete;
  HomeLock& operator=(const HomeLock&) = delete;

  // Takes the lock without a deadline and without announcing itself, only while no other
  // process waits for it: whoever asked first goes first. Returns nullptr once `stop()` is true
  // (checked every 50 ms). Throws CliError(home_io) when the files cannot be opened.
  static std::unique_ptr<HomeLock> wait_behind_others(const Home& home,
                                                      const std::function<bool()>& stop);
  // True while another process waits for this lock.
  bool others_waiting() const;

 private:
  HomeLock(const Home& home);
  bool try_lock();

  Home home_;
  int fd_ = -1;
  int wait_fd_ = -1;  // the wait file, open for others_waiting()
};

}  // namespace kith::cli
