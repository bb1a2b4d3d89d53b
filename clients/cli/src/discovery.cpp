#include "kith/cli/discovery.hpp"

#include <map>

#include "kith/cli/circle.hpp"

namespace kith::cli {

std::vector<DiscoveredPlan> discover_plans(Device& device, const ServerOptions& server) {
  SyncSession session(device.engine(), server);
  session.connect();
  auto out = discover_plans(device, session);
  session.close();
  return out;
}

std::vector<DiscoveredPlan> discover_plans(Device& device, SyncSession& session) {
  std::vector<ServerPlan> listed = session.list_server_plans();
  std::map<sync::PlanId, std::string> held;
  for (const auto& [id, title] : device.engine().plans()) held.emplace(id, title);
  std::vector<DiscoveredPlan> out;
  for (ServerPlan& p : listed) {
    DiscoveredPlan d{std::move(p), std::nullopt};
    if (auto it = held.find(d.server.plan); it != held.end()) d.title = it->second;
    out.push_back(std::move(d));
  }
  return out;
}

nlohmann::json discovered_json(const std::vector<DiscoveredPlan>& plans) {
  nlohmann::json out = nlohmann::json::array();
  for (const DiscoveredPlan& d : plans) {
    nlohmann::json j{{"id", d.server.plan.hex()},
                     {"owner", d.server.owner},
                     {"owner_account", d.server.owner_account.hex()},
                     {"created_at_ms", d.server.created_at_ms},
                     {"expires_at_ms", d.server.expires_at_ms},
                     {"expired", d.server.expired},
                     {"on_this_device", d.on_this_device()}};
    if (d.title) j["title"] = *d.title;
    out.push_back(std::move(j));
  }
  return out;
}

std::string describe_discovered(const DiscoveredPlan& d) {
  const ServerPlan& p = d.server;
  std::string out = p.owner ? "yours" : "member (owner " + p.owner_account.short_hex() + ")";
  if (p.created_at_ms) out += ", created " + iso_utc(p.created_at_ms).substr(0, 10);
  if (p.expired) {
    out += ", your access expired " + iso_utc(p.expires_at_ms).substr(0, 10) +
           ": ask the plan's owner to grant it again";
  } else if (p.expires_at_ms) {
    out += ", your access ends " + iso_utc(p.expires_at_ms).substr(0, 10);
  }
  return out;
}

std::vector<sync::PlanId> plans_to_link(const std::vector<DiscoveredPlan>& plans) {
  std::vector<sync::PlanId> out;
  for (const DiscoveredPlan& d : plans) {
    if (!d.on_this_device() && !d.server.expired) out.push_back(d.server.plan);
  }
  return out;
}

}  // namespace kith::cli
