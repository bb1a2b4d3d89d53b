// What every command shares: the global options, the streams, the environment, and the helpers
// that turn them into a home, an open device and a server. Internal to kith_cli_core.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "kith/cli/commands.hpp"
#include "kith/cli/device.hpp"
#include "kith/cli/environment.hpp"
#include "kith/cli/error.hpp"
#include "kith/cli/home.hpp"
#include "kith/cli/render.hpp"
#include "kith/cli/sync_session.hpp"

namespace kith::cli {

// The help text of every command's PLAN argument.
inline constexpr const char* kPlanHelp =
    "The plan: its id, an unambiguous start of it, or its title";

struct GlobalOptions {
  std::string home;
  std::string server;
  std::string ca;
  bool json = false;
};

struct Context {
  std::ostream& out;
  std::ostream& err;
  const Environment& env;
  Terminal terminal;
  GlobalOptions opts;
  // Set by the parsed subcommand's callback; run() calls it after parsing succeeds, so that a
  // parse error never runs half a command.
  std::function<void()> action;

  Home home() const { return Home::locate(opts.home, env); }
  // Asks for the passphrase (KITH_PASSPHRASE or the terminal) and opens the device.
  Device open(Device::Access access) const;
  // --server / KITH_SERVER and --ca / KITH_CA; nullopt when no server is configured.
  std::optional<ServerOptions> server() const;
  // As server(), throwing CliError(no_server) when none is configured.
  ServerOptions require_server() const;
  // "you (NAME)" for this account, a short account id for others.
  // Who an account is in `plan`, for people (kith/cli/names.hpp).
  NameOf names(const Device& device, const sync::PlanId& plan) const;
  // Prints a success object (with "ok": true) on stdout, as one line.
  void emit(nlohmann::json j) const;

  // For commands that change access and ask first ("revoke member 3fa2…?"): with --yes, go on;
  // otherwise there must be a terminal to ask on, else CliError(confirmation_needed), naming
  // `what` ("revoking access"). Call before changing anything, so a script fails at once.
  void check_can_confirm(bool yes, std::string_view what) const;
  // Asks `question` on the terminal unless `yes`; CliError(cancelled) unless the answer is yes.
  void confirm(bool yes, std::string_view question) const;

  // One best-effort sync of `plan` for commands that work offline and send when they can
  // (invite, grant, revoke): `sent` when a server is configured, answered and refused nothing;
  // otherwise `why_not` says why, for the note that the change goes out at the next `kith sync`.
  struct Attempt {
    bool sent = false;
    std::string why_not;
    PlanSync result;
  };
  Attempt try_sync(Device& device, const sync::PlanId& plan) const;
};

// The command table. Each adds its subcommands to `app`.
void register_identity_commands(CLI::App& app, Context& ctx);  // init, whoami
void register_plan_commands(CLI::App& app, Context& ctx);      // plan create, plan list
void register_record_commands(CLI::App& app, Context& ctx);    // add, set, list, show,
                                                               // conflicts, resolve
void register_sync_commands(CLI::App& app, Context& ctx);      // sync, watch
void register_invite_commands(CLI::App& app, Context& ctx);    // invite, join
void register_member_commands(CLI::App& app, Context& ctx);    // members, grant, revoke
void register_log_commands(CLI::App& app, Context& ctx);       // log
void register_device_commands(CLI::App& app, Context& ctx);    // device link, device list
void register_fhir_commands(CLI::App& app, Context& ctx);      // export, import

// "1 change" / "3 changes".
std::string count_of(std::uint64_t n, std::string_view one, std::string_view many);

}  // namespace kith::cli
