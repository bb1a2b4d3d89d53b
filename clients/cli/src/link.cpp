#include "kith/cli/link.hpp"

#include <algorithm>

#include "kith/cli/error.hpp"
#include "kith/sync/error.hpp"

namespace kith::cli {
namespace {

bool account_is_member(const sync::MembershipLog& log, const sync::AccountId& account) {
  const auto members = log.members();
  return std::any_of(members.begin(), members.end(),
                     [&](const sync::MemberView& m) { return m.account == account; });
}

// The one-line reason for a refused conversation; the caller has already forgotten the plan.
[[noreturn]] void refused(const PlanSync& r, const sync::PlanId& plan) {
  const auto& e = r.errors.front();
  if (e.code == "not_member") {
    // The server gives the same answer for a plan it does not have, so as not to tell a
    // stranger which plans exist.
    throw CliError(Exit::kNotFound, "not_member",
                   "your account is not a member of plan " + plan.short_hex() +
                       " (or there is no such plan); ask its owner for an invitation",
                   "`kith join CODE` accepts it");
  }
  throw CliError(Exit::kNetwork, "server_refused",
                 "the server refused (" + e.code + "): " + e.message);
}

}  // namespace

sync::PlanId parse_plan_id(const std::string& text) {
  try {
    return sync::PlanId::parse(text);
  } catch (const sync::SyncError&) {
    throw CliError(Exit::kUsage, "bad_plan_id",
                   "'" + text + "' is not a plan id (" + std::to_string(2 * sync::PlanId::kSize) +
                       " hex digits)",
                   "`kith plan list --json` on another of your devices shows it");
  }
}

void link_this_device(Device& device, const ServerOptions& server, const sync::PlanId& plan,
                      const std::string& title) {
  const sync::AccountId me = device.engine().identity().account();
  const sync::DeviceId this_device = device.engine().identity().device();
  bool held = false;
  for (const auto& [id, t] : device.engine().plans()) held |= id == plan;
  if (held && device.engine().membership(plan).account_of(this_device)) {
    throw CliError(Exit::kFailed, "already_linked",
                   "this device is in plan " + plan.short_hex() + " already",
                   "`kith sync` updates it");
  }
  if (!held) device.engine().follow(plan, title);

  // Anything that fails before the entry is sent leaves no trace of the plan here.
  PlanSync got, sent;
  try {
    SyncSession session(device.engine(), server);
    session.connect();
    got = session.sync_plan(plan);
    if (!got.errors.empty()) refused(got, plan);
    if (!account_is_member(device.engine().membership(plan), me)) {
      throw CliError(Exit::kNotFound, "not_member",
                     "your account is not a member of plan " + plan.short_hex() +
                         "; ask its owner for an invitation",
                     "`kith join CODE` accepts it");
    }
    device.engine().add_this_device(plan);
    sent = session.sync_plan(plan);
    // An entry that lost its place to someone else's is made again on top and sent once more.
    if (!sent.errors.empty()) sent = session.sync_plan(plan);
    session.close();
    if (!sent.errors.empty()) refused(sent, plan);
  } catch (...) {
    CliError e = to_cli_error(std::current_exception());
    if (!held) device.forget_plan(plan);
    throw e;
  }
}

}  // namespace kith::cli
