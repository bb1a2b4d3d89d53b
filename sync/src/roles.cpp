#include "kith/sync/roles.hpp"

#include <algorithm>
#include <map>

namespace kith::sync {
namespace {

using P = Permission;

std::map<std::string_view, Permission> preset(Role role) {
  switch (role) {
    case Role::kFamily:
      return {{"profile", P::kRead},  {"outcomes", P::kRead}, {"support", P::kRead},
              {"activity", P::kRead}, {"circle", P::kRead},   {"notes", P::kAppend}};
    case Role::kNurse:
      return {{"profile", P::kRead},    {"risk", P::kRead},    {"support", P::kRead},
              {"health", P::kWrite},    {"activity", P::kAppend}, {"notes", P::kAppend}};
    case Role::kProvider:
      return {{"profile", P::kRead},
              {"support", P::kRead},
              {"risk", P::kRead},
              {"outcomes", P::kRead},
              {"activity", P::kAppend}};
    case Role::kSocialWorker: {
      std::map<std::string_view, Permission> out;
      for (std::string_view s : kKnownSections) {
        if (s != kNamesSection) out[s] = P::kRead;  // names: every invitation adds it
      }
      for (std::string_view s : {"assessment", "budget", "outcomes", "support"}) out[s] = P::kWrite;
      out["circle"] = P::kManage;
      return out;
    }
  }
  return {};
}

constexpr Role kRoles[] = {Role::kFamily, Role::kNurse, Role::kProvider, Role::kSocialWorker};

}  // namespace

std::optional<Role> parse_role(std::string_view text) noexcept {
  for (Role r : kRoles) {
    if (role_name(r) == text) return r;
  }
  return std::nullopt;
}

std::string_view role_name(Role role) noexcept {
  switch (role) {
    case Role::kFamily:
      return "family";
    case Role::kNurse:
      return "nurse";
    case Role::kProvider:
      return "provider";
    case Role::kSocialWorker:
      return "social-worker";
  }
  return "custom";
}

std::vector<GrantSpec> role_grants(Role role, std::uint64_t expires_at_ms) {
  std::vector<GrantSpec> out;
  for (const auto& [section, permission] : preset(role)) {
    out.push_back(GrantSpec{Section::parse(section), permission, expires_at_ms});
  }
  std::sort(out.begin(), out.end(),
            [](const GrantSpec& a, const GrantSpec& b) { return a.section < b.section; });
  return out;
}

std::optional<Role> role_of(const std::vector<GrantSpec>& grants) {
  // Every invitation adds the names section (SyncEngine::invite), whatever the role.
  std::map<Section, Permission> have;
  for (const GrantSpec& g : grants) {
    if (g.permission != P::kNone && g.section.name() != kNamesSection) {
      have[g.section] = g.permission;
    }
  }
  for (Role r : kRoles) {
    std::map<Section, Permission> want;
    for (const auto& [section, permission] : preset(r)) {
      if (section != kNamesSection) want[Section::parse(section)] = permission;
    }
    if (want == have) return r;
  }
  return std::nullopt;
}

}  // namespace kith::sync
