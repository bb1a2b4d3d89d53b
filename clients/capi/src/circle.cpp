// kith_invite_create, kith_member_*, kith_access_log_list: the circle of support, offline (what
// changes goes out with the next kith_sync_once).
#include <cctype>
#include <nlohmann/json.hpp>

#include "handle.hpp"
#include "kith/cli/names.hpp"
#include "kith/cli/circle.hpp"
#include "kith/cli/device.hpp"
#include "kith/cli/error.hpp"
#include "kith/cli/refs.hpp"
#include "kith/sync/roles.hpp"

using kith::capi::guarded;
using kith::capi::handle;
using kith::capi::require_out;
using kith::capi::required;
namespace cli = kith::cli;
namespace ks = kith::sync;  // `sync` would clash with ::sync()

namespace {

constexpr std::uint64_t kDefaultInviteSeconds = 7 * 24 * 3600;

}  // namespace

extern "C" {

kith_status kith_invite_create(kith_home* home, const char* plan, const char* role,
                               uint64_t valid_for_seconds, char** code) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    require_out(code, "code");
    const std::string role_text(required(role, "the role"));
    const auto r = ks::parse_role(role_text);
    if (!r) {
      throw cli::CliError(
          cli::Exit::kUsage, "bad_role",
          "'" + role_text + "' is not a role; use family, nurse, provider or social-worker");
    }
    const std::uint64_t seconds = valid_for_seconds ? valid_for_seconds : kDefaultInviteSeconds;
    if (seconds > 366ull * 24 * 3600) {
      throw cli::CliError(cli::Exit::kUsage, "invalid_argument",
                          "an invitation may be valid for a year at most");
    }
    const std::uint64_t expires = cli::now_ms() + seconds * 1000;
    auto& engine = h.device.engine();
    const ks::PlanId p = cli::resolve_plan(engine, required(plan, "the plan"));
    const ks::InviteCode c = engine.invite(p, ks::role_grants(*r, expires), expires);
    *code = kith::capi::to_c(c.text());
  });
}

kith_status kith_member_list(kith_home* home, const char* plan, char** json) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    require_out(json, "json");
    const auto& engine = h.device.engine();
    const ks::PlanId p = cli::resolve_plan(engine, required(plan, "the plan"));
    const auto names = cli::MemberNames::load(h.device.store(), engine, p);
    nlohmann::json members = nlohmann::json::array();
    for (const auto& m : engine.membership(p).members()) {
      nlohmann::json devices = nlohmann::json::array();
      for (const auto& d : m.devices) devices.push_back(d.hex());
      nlohmann::json grants = nlohmann::json::array();
      for (const auto& [section, g] : m.grants) {
        if (g.permission == ks::Permission::kNone) continue;
        grants.push_back({{"section", section.name()},
                          {"permission", std::string(ks::permission_name(g.permission))},
                          {"expires_at_ms", g.expires_at_ms}});
      }
      members.push_back({{"account", m.account.hex()},
                         {"owner", m.owner},
                         {"you", m.account.hex() == h.device.info().account},
                         {"devices", devices},
                         {"grants", grants}});
      if (const std::string* n = names.find(m.account)) members.back()["name"] = *n;
    }
    *json = kith::capi::to_c(nlohmann::json{{"plan", p.hex()}, {"members", members}}.dump());
  });
}

kith_status kith_member_name_set(kith_home* home, const char* plan, const char* member,
                                 const char* name) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    const ks::PlanId p = cli::resolve_plan(h.device.engine(), required(plan, "the plan"));
    cli::name_member(h.device.store(), h.device.engine(), p, required(member, "the member"),
                     required(name, "the name"));
  });
}

kith_status kith_member_grant(kith_home* home, const char* plan, const char* member,
                              const char* grant, uint64_t expires_at_ms) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    auto& engine = h.device.engine();
    const ks::PlanId p = cli::resolve_plan(engine, required(plan, "the plan"));
    const ks::AccountId who =
        cli::resolve_member_here(h.device.store(), engine, p, required(member, "the member"));
    ks::GrantSpec g = cli::parse_grant(required(grant, "the grant"));
    if (expires_at_ms != 0 && expires_at_ms <= cli::now_ms()) {
      throw cli::CliError(cli::Exit::kUsage, "invalid_argument", "that expiry is already past");
    }
    g.expires_at_ms = expires_at_ms;
    engine.grant(p, who, g);
  });
}

kith_status kith_member_revoke(kith_home* home, const char* plan, const char* member,
                               const char* section) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    auto& engine = h.device.engine();
    const ks::PlanId p = cli::resolve_plan(engine, required(plan, "the plan"));
    const ks::AccountId who =
        cli::resolve_member_here(h.device.store(), engine, p, required(member, "the member"));
    std::optional<ks::Section> only;
    if (auto s = kith::capi::optional_arg(section)) only = ks::Section::parse(*s);
    engine.revoke(p, who, only);
  });
}

kith_status kith_access_log_list(kith_home* home, const char* plan, char** json) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    require_out(json, "json");
    const auto& engine = h.device.engine();
    const ks::PlanId p = cli::resolve_plan(engine, required(plan, "the plan"));
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : engine.access_log(p)) {
      out.push_back({{"at_ms", e.at_ms},
                     {"kind", std::string(cli::access_kind_name(e.kind))},
                     {"account", e.account.hex()},
                     {"device", e.device.hex()},
                     {"section", e.section},
                     {"text", e.text}});
    }
    *json = kith::capi::to_c(out.dump());
  });
}

}  // extern "C"
