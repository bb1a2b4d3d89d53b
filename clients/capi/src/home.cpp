// kith_home_*, kith_identity_*: opening a home (kith_cli_core's layout, key store and Device) and
// what it says about this person and device.
#include "kith/cli/home.hpp"

#include <memory>

#include "handle.hpp"
#include "kith/cli/error.hpp"
#include "kith/crypto/init.hpp"
#include "kith/crypto/safety_number.hpp"
#include "kith/crypto/secret.hpp"
#include "kith/crypto/sign.hpp"

using kith::capi::guarded;
using kith::capi::handle;
using kith::capi::require_out;
using kith::capi::required;
namespace cli = kith::cli;

namespace {

// 30 digits as 6 groups of 5, as `kith whoami` prints them.
std::string grouped(const std::string& digits) {
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && i % 5 == 0) out += ' ';
    out += digits[i];
  }
  return out;
}

}  // namespace

extern "C" {

kith_status kith_home_create(const char* dir, const char* name, const char* passphrase,
                             kith_home** home, char** recovery_key) noexcept {
  return guarded([&] {
    require_out(home, "home");
    const cli::Home h{std::string(required(dir, "the home directory"))};
    const auto pass = required(passphrase, "the passphrase");
    kith::crypto::ensure_initialized();
    cli::Created made = cli::create_device(h, required(name, "the name"), pass);
    char* key = nullptr;
    try {
      if (recovery_key) key = kith::capi::to_c(made.recovery_key);
      kith::crypto::secure_wipe(made.recovery_key.data(), made.recovery_key.size());
      *home = new kith_home(cli::Device::open(h, pass, cli::Device::Access::kWrite));
    } catch (...) {
      if (key) kith::crypto::secure_wipe(key, made.recovery_key.size());
      std::free(key);
      throw;
    }
    if (recovery_key) *recovery_key = key;
  });
}

kith_status kith_home_restore(const char* dir, const char* name, const char* passphrase,
                              const char* recovery_key, kith_home** home) noexcept {
  return guarded([&] {
    require_out(home, "home");
    const cli::Home h{std::string(required(dir, "the home directory"))};
    const auto pass = required(passphrase, "the passphrase");
    kith::crypto::ensure_initialized();
    const kith::crypto::RecoveryKey key =
        cli::parse_recovery_key(required(recovery_key, "the recovery key"));
    cli::create_device(h, required(name, "the name"), pass, &key);
    *home = new kith_home(cli::Device::open(h, pass, cli::Device::Access::kWrite));
  });
}

kith_status kith_home_open(const char* dir, const char* passphrase, kith_home** home) noexcept {
  return guarded([&] {
    require_out(home, "home");
    const cli::Home h{std::string(required(dir, "the home directory"))};
    h.require_initialised();  // before the passphrase: say what is missing, not that it is wrong
    kith::crypto::ensure_initialized();
    *home = new kith_home(
        cli::Device::open(h, required(passphrase, "the passphrase"), cli::Device::Access::kWrite));
  });
}

void kith_home_close(kith_home* home) noexcept {
  // The engine saves its state in its destructor, which does not throw.
  delete home;
}

kith_status kith_home_set_server(kith_home* home, const char* url, const char* ca_file,
                                 uint32_t timeout_ms) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    cli::ServerOptions s;
    s.url = std::string(required(url, "the server URL"));
    cli::parse_server_url(s.url);  // refuse a bad URL now, not at the first sync
    if (auto ca = kith::capi::optional_arg(ca_file)) s.ca_file = *ca;
    if (timeout_ms) s.timeout = std::chrono::milliseconds(timeout_ms);
    s.client_name = "libkith 0.1";
    h.server = std::move(s);
  });
}

kith_status kith_identity_account(kith_home* home, char** account) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    require_out(account, "account");
    *account = kith::capi::to_c(h.device.info().account);
  });
}

kith_status kith_identity_device(kith_home* home, char** device) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    require_out(device, "device");
    *device = kith::capi::to_c(h.device.info().device);
  });
}

kith_status kith_identity_safety_number(kith_home* home, char** digits) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    require_out(digits, "digits");
    // The account id is the identity public key the safety number is made from.
    const auto account = kith::sync::AccountId::parse(h.device.info().account);
    *digits = kith::capi::to_c(
        grouped(kith::crypto::safety_number_half(kith::crypto::VerifyKey::parse(account.bytes()))));
  });
}

kith_status kith_home_on_record_changed(kith_home* home, kith_record_changed_fn fn,
                                        void* user) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    h.on_record_changed = fn;
    h.record_changed_user = user;
  });
}

kith_status kith_home_on_conflict(kith_home* home, kith_conflict_fn fn, void* user) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    h.on_conflict = fn;
    h.conflict_user = user;
  });
}

kith_status kith_home_on_sync_state(kith_home* home, kith_sync_state_fn fn, void* user) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    h.on_sync_state = fn;
    h.sync_state_user = user;
  });
}

}  // extern "C"
