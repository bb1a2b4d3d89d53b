// A SyncSession (kith_cli_core) for one libkith call: connected to the home's server, with the
// engine's events handed to the callbacks registered on the home. Internal to libkith.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "handle.hpp"

namespace kith::capi {

// Throws CliError(no_server) when kith_home_set_server has not been called.
const cli::ServerOptions& require_server(const kith_home& h);

// Calls the home's sync-state callback, if any (plan may be nullptr).
void report_state(const kith_home& h, kith_sync_state state, const sync::PlanId* plan,
                  std::uint64_t server_seq = 0, std::uint64_t waiting = 0);

// Connects (reporting KITH_SYNC_CONNECTING, and KITH_SYNC_OFFLINE before rethrowing a failure).
std::unique_ptr<cli::SyncSession> open_session(kith_home& h);

// Runs `body` and reports KITH_SYNC_OFFLINE if it throws a transport error, then rethrows.
template <class Body>
auto reporting_offline(const kith_home& h, const sync::PlanId* plan, Body&& body) {
  try {
    return body();
  } catch (const client::TransportError&) {
    report_state(h, KITH_SYNC_OFFLINE, plan);
    throw;
  }
}

// The first server Error or engine problem of `r` as an exception (SyncError for the engine's
// codes, so that invite refusals keep theirs); nothing when there is none.
void throw_if_refused(const cli::PlanSync& r, const std::string& what);

}  // namespace kith::capi
