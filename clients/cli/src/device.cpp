#include "kith/cli/device.hpp"

#include <chrono>
#include <system_error>

#include "kith/cli/error.hpp"
#include "kith/crypto/error.hpp"
#include "kith/crypto/identity.hpp"
#include "kith/crypto/key_store.hpp"
#include "kith/sync/record_types.hpp"

namespace kith::cli {
namespace fs = std::filesystem;

namespace {

// How long a writing command waits for another kith process on the same home.
constexpr int kLockWaitMs = 5000;

void remove_quietly(const fs::path& p) {
  std::error_code ec;
  fs::remove(p, ec);
}

}  // namespace

std::uint64_t now_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

crypto::RecoveryKey parse_recovery_key(std::string_view text) {
  try {
    return crypto::RecoveryKey::parse(text);
  } catch (const crypto::RecoveryKeyError& e) {
    throw CliError(Exit::kKeys, "bad_recovery_key",
                   std::string("that recovery key is not right: ") + e.what());
  }
}

Created create_device(const Home& home, std::string_view name, std::string_view passphrase,
                      const crypto::RecoveryKey* restore) {
  // The circle sees it (SyncEngine::share_name_as).
  if (auto bad = sync::check_member_name(name)) {
    throw CliError(Exit::kUsage, "bad_name", "that name " + *bad);
  }
  if (home.initialised()) {
    throw CliError(Exit::kKeys, "already_initialised",
                   "there is already a Kith identity in " + home.dir().string(),
                   "use another --home to make a new one");
  }
  home.create();
  HomeLock lock(home, kLockWaitMs);
  // The identity key comes from the recovery key, so writing the recovery key down is enough to
  // restore the identity on a new phone.
  const auto recovery = restore ? *restore : crypto::RecoveryKey::generate();
  crypto::DeviceSecrets secrets{recovery.identity_key(), crypto::DeviceKeys::generate()};
  const std::uint64_t issued_at = now_ms();
  const crypto::KeyStore keys(home.key_file());
  Created out;
  try {
    keys.save(secrets.serialize(), passphrase);
    sync::DeviceIdentity me = sync::DeviceIdentity::create(std::move(secrets), issued_at);
    out.info = DeviceInfo{std::string(name), me.account().hex(), me.device().hex(), issued_at};
    home.write_info(out.info);
    sync::LocalStore store(home.store_file(), me.storage_key());
  } catch (...) {
    for (const auto& p : {home.key_file(), home.info_file(), home.store_file()}) remove_quietly(p);
    remove_quietly(home.store_file().string() + "-wal");
    remove_quietly(home.store_file().string() + "-shm");
    throw;
  }
  out.recovery_key = recovery.text();
  return out;
}

Device::Device(Home home, DeviceInfo info) : home_(std::move(home)), info_(std::move(info)) {}
Device::Device(Device&&) noexcept = default;
Device& Device::operator=(Device&&) noexcept = default;
Device::~Device() = default;

Device Device::open(const Home& home, std::string_view passphrase, Access access) {
  home.require_initialised();
  Device d(home, home.read_info());
  if (access == Access::kWrite) d.lock_ = std::make_unique<HomeLock>(home, kLockWaitMs);
  const crypto::SecretBytes payload = crypto::KeyStore(home.key_file()).load(passphrase);
  sync::DeviceIdentity me =
      sync::DeviceIdentity::create(crypto::DeviceSecrets::parse(payload.view()), d.info_.issued_at);
  if (me.account().hex() != d.info_.account || me.device().hex() != d.info_.device) {
    throw CliError(Exit::kKeys, "corrupt_home",
                   home.info_file().string() + " describes another device than the key file");
  }
  d.store_ = std::make_unique<sync::LocalStore>(home.store_file(), me.storage_key());
  d.start_engine(std::move(me));
  return d;
}

void Device::forget_plan(const sync::PlanId& plan) {
  // The engine keeps each plan in memory and saves it on destruction, so it goes first; its keys
  // are kept (serialized, in wiped memory) to make the new one.
  const crypto::SecretBytes secrets = engine_->identity().secrets.serialize();
  engine_.reset();
  store_->remove_plan(plan);
  start_engine(identity_from(secrets));
}

void Device::pause() {
  if (paused() || !lock_) throw std::logic_error("Device::pause: not an open kWrite device");
  auto secrets = std::make_unique<crypto::SecretBytes>(engine_->identity().secrets.serialize());
  engine_.reset();  // saves each plan's state
  store_.reset();
  lock_.reset();
  paused_secrets_ = std::move(secrets);
}

bool Device::resume(const std::function<bool()>& stop) {
  if (!paused()) throw std::logic_error("Device::resume: not paused");
  auto lock = HomeLock::wait_behind_others(home_, stop);
  if (!lock) return false;
  sync::DeviceIdentity me = identity_from(*paused_secrets_);
  store_ = std::make_unique<sync::LocalStore>(home_.store_file(), me.storage_key());
  lock_ = std::move(lock);
  start_engine(std::move(me));
  paused_secrets_.reset();
  return true;
}

sync::DeviceIdentity Device::identity_from(const crypto::SecretBytes& secrets) const {
  return sync::DeviceIdentity::create(crypto::DeviceSecrets::parse(secrets.view()),
                                      info_.issued_at);
}

void Device::start_engine(sync::DeviceIdentity me) {
  engine_ = std::make_unique<sync::SyncEngine>(*store_, std::move(me), now_ms);
  share_name();
}

void Device::share_name() {
  // A name from before names were checked, that would not print safely, is kept to itself.
  if (info_.name != kUnnamedDevice && !sync::check_member_name(info_.name)) {
    engine_->share_name_as(info_.name);
  }
}

}  // namespace kith::cli
