// This device as the commands use it: the keys opened with the passphrase, the local store and
// the sync engine over it.
//
//   Device d = Device::open(home, passphrase, Device::Access::kWrite);
//   auto id = d.engine().create_plan("Ada's plan");
//
// kWrite takes the home's lock for the Device's lifetime, so two processes never author into
// this device's chains at once; kRead takes none (reading is safe beside a writer: SQLite
// isolates it, and what the engine saves on close is consistent with what it read). Not
// thread-safe. The engine saves its state when the Device is destroyed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "kith/cli/home.hpp"
#include "kith/crypto/recovery.hpp"
#include "kith/sync/engine.hpp"
#include "kith/sync/local_store.hpp"

namespace kith::cli {

// What `kith init` made. `recovery_key` is shown to the person once; the caller wipes it.
struct Created {
  DeviceInfo info;
  std::string recovery_key;
};

// Wall clock, Unix milliseconds.
std::uint64_t now_ms();

// A recovery key as a person typed it. Throws CliError(bad_recovery_key): one stable code for
// every way a key can be wrong, with a message naming the group to check.
crypto::RecoveryKey parse_recovery_key(std::string_view text);

// Makes a new identity (from a fresh recovery key) and device keys, seals them in the key store
// under `passphrase`, writes device.json and an empty store. With `recovery`, the identity is the
// one that recovery key restores and only the device keys are new (another device of the same
// account; `kith init --recover` and `kith device add` will use this). Throws
// CliError(already_initialised) if the home has keys; on any failure, removes what it wrote.
Created create_device(const Home& home, std::string_view name, std::string_view passphrase,
                      const crypto::RecoveryKey* recovery = nullptr);

class Device {
 public:
  enum class Access { kRead, kWrite };

  // Throws CliError: not_initialised, wrong_passphrase, corrupt_key_file, home_busy, store.
  static Device open(const Home& home, std::string_view passphrase, Access access);

  Device(Device&&) noexcept;
  Device& operator=(Device&&) noexcept;
  ~Device();

  sync::SyncEngine& engine() noexcept { return *engine_; }
  const sync::SyncEngine& engine() const noexcept { return *engine_; }
  // The local store under the engine: for what is this device's alone (verified accounts).
  sync::LocalStore& store() noexcept { return *store_; }
  const sync::LocalStore& store() const noexcept { return *store_; }
  const DeviceInfo& info() const noexcept { return info_; }
  const Home& home() const noexcept { return home_; }

  // Stops holding `plan` and removes everything stored for it, for a command that followed a
  // plan and must leave nothing behind when it fails (`kith device link`). The engine is made
  // again over the store, so references to the old one are invalid afterwards.
  void forget_plan(const sync::PlanId& plan);

  // For a command that runs for long (`kith watch`): lets another kith process have the home.
  // pause() saves and closes the engine and the store and lets go of the lock, keeping the
  // device's keys in wiped memory; engine() and store() must not be used until resume(), which
  // takes the lock back once no one else waits for it (HomeLock::wait_behind_others) and opens
  // the store and the engine again, so they see what the other process wrote. resume() returns
  // false, still paused, once `stop()` is true. Only for a kWrite device.
  void pause();
  bool resume(const std::function<bool()>& stop);
  bool paused() const noexcept { return paused_secrets_ != nullptr; }
  // True while another kith process waits for this device's lock.
  bool others_waiting() const { return lock_ && lock_->others_waiting(); }

 private:
  // Tells the engine the name to share with each plan's circle: the one `kith init --name` was
  // given.
  void share_name();
  // This device's identity from its serialized secrets (kept while paused, or across
  // forget_plan).
  sync::DeviceIdentity identity_from(const crypto::SecretBytes& secrets) const;
  // Makes the engine over store_ and tells it the name to share.
  void start_engine(sync::DeviceIdentity me);
  Device(Home home, DeviceInfo info);

  Home home_;
  DeviceInfo info_;
  std::unique_ptr<HomeLock> lock_;
  std::unique_ptr<crypto::SecretBytes> paused_secrets_;  // while paused: the keys, serialized
  std::unique_ptr<sync::LocalStore> store_;
  std::unique_ptr<sync::SyncEngine> engine_;  // after store_: destroyed before it
};

}  // namespace kith::cli
