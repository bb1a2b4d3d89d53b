// Plan discovery for the CLI and libkith: which plans the server says this account is in
// (ListPlans), each marked whether this device holds it, so that a device restored from the
// recovery key can be linked to each (`kith plan list --remote`, `kith device link --all`,
// kith_plan_list_remote).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "kith/cli/device.hpp"
#include "kith/cli/sync_session.hpp"

namespace kith::cli {

struct DiscoveredPlan {
  ServerPlan server;
  std::optional<std::string> title;  // set when this device holds the plan
  bool on_this_device() const noexcept { return title.has_value(); }
};

// Asks the server (one connection, every page) and marks what this device holds. Changes
// nothing here. Throws client::TransportError, CliError(bad_server_url).
std::vector<DiscoveredPlan> discover_plans(Device& device, const ServerOptions& server);
// The same over a session already connected for `device`.
std::vector<DiscoveredPlan> discover_plans(Device& device, SyncSession& session);

// "yours" / "member (owner 7d1e2f3a)", with the creation date and, when it applies, the expiry.
std::string describe_discovered(const DiscoveredPlan& plan);

// {"id","owner","owner_account","created_at_ms","expires_at_ms","expired","on_this_device"
//  [,"title"]}: one per plan, in the server's (plan-id) order.
nlohmann::json discovered_json(const std::vector<DiscoveredPlan>& plans);

// The plans `kith device link --all` links: on the server, not on this device, not expired.
std::vector<sync::PlanId> plans_to_link(const std::vector<DiscoveredPlan>& plans);

}  // namespace kith::cli
