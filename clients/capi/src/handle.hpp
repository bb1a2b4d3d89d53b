// What a kith_home is, and the wrapper every exported function goes through. Internal to libkith.
//
// Every function of kith.h is `noexcept` and reads as
//   return kith::capi::guarded([&] { ... });
// guarded() clears this thread's last error, runs the body and converts anything it throws
// (through kith::cli::to_cli_error, so the C codes are the CLI's) into a kith_status plus the
// thread-local message.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "kith.h"
#include "kith/cli/device.hpp"
#include "kith/cli/render.hpp"
#include "kith/cli/sync_session.hpp"

// The C handle is the C++ object: an open device (keys, store, engine, the home's lock), the
// server it syncs with and the callbacks registered on it.
struct kith_home {
  explicit kith_home(kith::cli::Device d) : device(std::move(d)) {}

  kith::cli::Device device;
  std::optional<kith::cli::ServerOptions> server;
  kith_record_changed_fn on_record_changed = nullptr;
  void* record_changed_user = nullptr;
  kith_conflict_fn on_conflict = nullptr;
  void* conflict_user = nullptr;
  kith_sync_state_fn on_sync_state = nullptr;
  void* sync_state_user = nullptr;
};

namespace kith::capi {

void clear_error() noexcept;
// Records the exception being handled as this thread's last error; returns its status.
kith_status fail_current() noexcept;

template <class Body>
kith_status guarded(Body&& body) noexcept {
  clear_error();
  try {
    body();
    return KITH_OK;
  } catch (...) {
    return fail_current();
  }
}

// A required string argument. Throws CliError(invalid_argument) naming `what` for NULL or "".
std::string_view required(const char* s, const char* what);
// An optional one: NULL or "" is nullopt.
std::optional<std::string> optional_arg(const char* s);
// Throws CliError(invalid_argument) for a NULL handle or out-parameter.
kith_home& handle(kith_home* h);
void require_out(const void* out, const char* what);

// A malloc'd copy for the caller to kith_string_free.
char* to_c(std::string_view s);

// "you (NAME)" for this account, the name this device gave a member, else a short account id
// (as the CLI names them).
cli::NameOf names(const kith_home& h, const kith::sync::PlanId& plan);

}  // namespace kith::capi
