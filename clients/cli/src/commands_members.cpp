// kith members, kith grant, kith revoke: who is in the circle of support and what they may do.
#include <memory>

#include "context.hpp"
#include "kith/cli/circle.hpp"
#include "kith/cli/names.hpp"
#include "kith/cli/refs.hpp"
#include "kith/crypto/safety_number.hpp"
#include "kith/sync/roles.hpp"

namespace kith::cli {
namespace {

struct Args {
  std::string plan;
  std::string member;
  std::string grant;
  std::string section;
  std::string expires;
  std::string verify;
  std::string name;
  bool yes = false;
};

const char* kMemberHelp =
    "The member: their account id or an unambiguous start of it, or their name as `kith "
    "members PLAN` shows it";

std::string safety_between(const sync::AccountId& a, const sync::AccountId& b) {
  return crypto::safety_number(crypto::VerifyKey::parse(a.bytes()),
                               crypto::VerifyKey::parse(b.bytes()));
}

std::string sections_text(const std::vector<sync::Section>& sections) {
  std::string out;
  for (const auto& s : sections) out += (out.empty() ? "" : ", ") + s.name();
  return out;
}

// The note printed after a change that a sync should carry.
void say_sent(Context& ctx, const Context::Attempt& sent) {
  if (sent.sent) {
    ctx.out << "Sent to the server.\n";
  } else {
    ctx.out << "Not sent yet (" << sent.why_not << "): it goes out at the next `kith sync`.\n";
  }
}

void refuse_self_or_owner(const sync::MembershipLog& log, const sync::AccountId& member,
                          const sync::AccountId& me, std::string_view doing) {
  if (member == me) {
    throw CliError(Exit::kUsage, "usage", "you cannot " + std::string(doing) + " yourself");
  }
  if (log.owner() && *log.owner() == member) {
    throw CliError(Exit::kUsage, "usage",
                   "member " + member.short_hex() +
                       " owns the plan; the owner's access cannot "
                       "be changed");
  }
}

void verify(Context& ctx, Device& device, const sync::PlanId& plan, const Args& a) {
  const sync::AccountId me = device.engine().identity().account();
  const sync::AccountId member =
      resolve_member_here(device.store(), device.engine(), plan, a.verify);
  if (member == me) throw CliError(Exit::kUsage, "usage", "you cannot verify yourself");
  const std::string number = safety_between(me, member);
  if (!a.yes && !ctx.opts.json) {
    ctx.out << "Safety number between you and member " << member.short_hex() << ":\n    " << number
            << "\n";
  }
  ctx.confirm(a.yes, "Have you compared this number with member " + member.short_hex() +
                         ", in person or by phone, and is it the same?");
  const std::uint64_t at = now_ms();
  device.store().set_verified(member, at);
  if (ctx.opts.json) {
    ctx.emit({{"plan", plan.hex()},
              {"member", member.hex()},
              {"verified_at", iso_utc(at)},
              {"safety_number", number}});
    return;
  }
  ctx.out << "Marked member " << member.short_hex() << " verified.\n";
}

void members(Context& ctx, const Args& a) {
  if (!a.verify.empty()) ctx.check_can_confirm(a.yes, "marking a member verified");
  Device device = ctx.open(a.verify.empty() ? Device::Access::kRead : Device::Access::kWrite);
  const auto& engine = device.engine();
  const sync::PlanId plan = resolve_plan(engine, a.plan);
  if (!a.verify.empty()) return verify(ctx, device, plan, a);

  const auto& log = engine.membership(plan);
  const sync::AccountId me = engine.identity().account();
  const std::uint64_t now = now_ms();
  const MemberNames known = MemberNames::load(device.store(), engine, plan);
  const NameOf name = name_of(device.info(), known);
  nlohmann::json list = nlohmann::json::array();
  if (!ctx.opts.json)
    ctx.out << "The circle of support of \"" << plan_title(engine, plan) << "\":\n";
  for (const auto& m : log.members()) {
    std::vector<sync::GrantSpec> grants;
    for (const auto& [s, g] : m.grants) {
      if (g.permission != sync::Permission::kNone) grants.push_back(g);
    }
    const auto role = m.owner ? std::nullopt : sync::role_of(grants);
    const std::string role_text = m.owner          ? "owner"
                                  : grants.empty() ? "no access"
                                  : role           ? std::string(sync::role_name(*role))
                                                   : "custom";
    // 0: not verified (GCC cannot see through an optional here under -Wmaybe-uninitialized).
    const std::uint64_t verified =
        m.account == me ? 0 : device.store().verified_at(m.account).value_or(0);
    const std::string safety = m.account == me ? "" : safety_between(me, m.account);
    if (ctx.opts.json) {
      nlohmann::json g = nlohmann::json::array();
      for (const auto& x : grants) {
        nlohmann::json j{{"section", x.section.name()},
                         {"permission", std::string(sync::permission_name(x.permission))}};
        if (x.expires_at_ms) {
          j["expires_at"] = iso_utc(x.expires_at_ms);
          j["expired"] = x.expires_at_ms <= now;
        }
        g.push_back(j);
      }
      nlohmann::json devices = nlohmann::json::array();
      for (const auto& d : m.devices) devices.push_back(d.hex());
      nlohmann::json j{{"account", m.account.hex()}, {"you", m.account == me}, {"owner", m.owner},
                       {"role", role_text},          {"devices", devices},     {"grants", g}};
      if (const std::string* n = known.find(m.account)) j["name"] = *n;
      if (m.account != me) {
        j["verified"] = verified != 0;
        if (verified) j["verified_at"] = iso_utc(verified);
        j["safety_number"] = safety;
      }
      list.push_back(j);
      continue;
    }
    ctx.out << "\n"
            << name(m.account) << "  [" << role_text << "]  account " << m.account.hex() << "\n";
    ctx.out << "  devices: ";
    for (std::size_t i = 0; i < m.devices.size(); ++i) {
      ctx.out << (i ? ", " : "") << m.devices[i].short_hex();
    }
    ctx.out << "\n";
    if (m.owner) {
      ctx.out << "  every section (the owner)\n";
    } else if (grants.empty()) {
      ctx.out << "  no access (revoked)\n";
    }
    for (const auto& g : grants) {
      ctx.out << "  " << grant_line(g);
      if (g.expires_at_ms && g.expires_at_ms <= now) ctx.out << " - expired";
      ctx.out << "\n";
    }
    if (m.account != me) {
      ctx.out << "  safety number: " << safety << "\n"
              << "  "
              << (verified ? "verified by you on " + iso_utc(verified)
                           : std::string("not verified (compare the number, then "
                                         "`kith members PLAN --verify " +
                                         m.account.short_hex() + "`)"))
              << "\n";
    }
  }
  std::size_t open = 0;
  for (const auto& [id, inv] : log.invites()) {
    if (!inv.used && inv.expires_at_ms > now) ++open;
  }
  if (ctx.opts.json) {
    ctx.emit({{"plan", plan.hex()}, {"members", list}, {"open_invitations", open}});
    return;
  }
  if (open) ctx.out << "\n" << count_of(open, "invitation", "invitations") << " not yet used.\n";
}

void grant(Context& ctx, const Args& a) {
  sync::GrantSpec g = parse_grant(a.grant);
  if (!a.expires.empty()) g.expires_at_ms = parse_when(a.expires, now_ms());
  Device device = ctx.open(Device::Access::kWrite);
  auto& engine = device.engine();
  const sync::PlanId plan = resolve_plan(engine, a.plan);
  const sync::AccountId member = [&] {
    try {
      return resolve_member_here(device.store(), device.engine(), plan, a.member);
    } catch (const CliError& e) {
      if (e.code() != "unknown_member") throw;
    }
    ctx.try_sync(device, plan);  // they may have joined since the last sync
    return resolve_member_here(device.store(), device.engine(), plan, a.member);
  }();
  const auto& log = engine.membership(plan);
  refuse_self_or_owner(log, member, engine.identity().account(), "change the access of");
  engine.grant(plan, member, g);
  const Context::Attempt sent = ctx.try_sync(device, plan);
  if (ctx.opts.json) {
    nlohmann::json j{{"plan", plan.hex()},
                     {"member", member.hex()},
                     {"section", g.section.name()},
                     {"permission", std::string(sync::permission_name(g.permission))},
                     {"sent", sent.sent}};
    if (g.expires_at_ms) j["expires_at"] = iso_utc(g.expires_at_ms);
    if (!sent.sent) j["not_sent_because"] = sent.why_not;
    ctx.emit(j);
    return;
  }
  ctx.out << "Member " << member.short_hex() << " " << grants_in_words({g}) << ".\n";
  say_sent(ctx, sent);
}

void revoke(Context& ctx, const Args& a) {
  std::optional<sync::Section> section;
  if (!a.section.empty()) section = parse_section(a.section);
  check_member_ref(a.member);
  ctx.check_can_confirm(a.yes, "revoking access");
  Device device = ctx.open(Device::Access::kWrite);
  auto& engine = device.engine();
  const sync::PlanId plan = resolve_plan(engine, a.plan);
  // Sync first: a member who joined since the last sync must be known here, or the new keys
  // would not be wrapped for them.
  const Context::Attempt before = ctx.try_sync(device, plan);
  if (!before.sent && !ctx.opts.json) {
    ctx.err << "kith: warning: could not sync first (" << before.why_not
            << "); anyone who joined since the last sync will need a new key from a later "
               "rotation\n";
  }
  const auto& log = engine.membership(plan);
  const sync::AccountId member =
      resolve_member_here(device.store(), device.engine(), plan, a.member);
  refuse_self_or_owner(log, member, engine.identity().account(), "revoke");
  const std::string what = section ? "to " + section->name() : "to every section";
  ctx.confirm(a.yes, "Revoke member " + member.short_hex() + "'s access " + what + " of \"" +
                         plan_title(engine, plan) + "\"? They keep what they have already synced.");
  const std::vector<sync::Section> rotated = engine.revoke(plan, member, section);
  const Context::Attempt sent = ctx.try_sync(device, plan);
  if (ctx.opts.json) {
    nlohmann::json names = nlohmann::json::array();
    for (const auto& s : rotated) names.push_back(s.name());
    nlohmann::json j{{"plan", plan.hex()},
                     {"member", member.hex()},
                     {"section", section ? nlohmann::json(section->name()) : nlohmann::json()},
                     {"rotated", names},
                     {"sent", sent.sent}};
    if (!sent.sent) j["not_sent_because"] = sent.why_not;
    ctx.emit(j);
    return;
  }
  ctx.out << "Revoked member " << member.short_hex() << "'s access " << what << ".\n"
          << "They keep what they had already synced; they get nothing new.\n";
  if (!rotated.empty()) {
    ctx.out << "Replaced the keys of: " << sections_text(rotated) << ".\n";
  }
  say_sent(ctx, sent);
}

}  // namespace

void name(Context& ctx, const Args& a) {
  check_name(a.name);
  Device device = ctx.open(Device::Access::kWrite);
  const sync::PlanId plan = resolve_plan(device.engine(), a.plan);
  const sync::AccountId member =
      name_member(device.store(), device.engine(), plan, a.member, a.name);
  const bool you = member == device.engine().identity().account();
  if (ctx.opts.json) {
    ctx.emit({{"plan", plan.hex()}, {"member", member.hex()}, {"name", a.name}, {"shared", you}});
    return;
  }
  if (you) {
    ctx.out << "You are \"" << a.name << "\" to the circle of this plan from the next sync.\n"
            << "The name is sealed: the server never sees it. Someone who named you on their own\n"
            << "device keeps seeing that name.\n";
    return;
  }
  ctx.out << "Member " << member.short_hex() << " is \"" << a.name << "\" on this device.\n"
          << "The name stays here: the server and the rest of the circle never see it.\n";
}

void register_member_commands(CLI::App& app, Context& ctx) {
  const char* plan_help = kPlanHelp;
  auto bind = [&ctx](CLI::App* cmd, std::shared_ptr<Args> args, void (*fn)(Context&, const Args&)) {
    cmd->callback([&ctx, args, fn] { ctx.action = [&ctx, args, fn] { fn(ctx, *args); }; });
  };
  {
    auto a = std::make_shared<Args>();
    auto* c = app.add_subcommand(
        "members", "The circle of support: each member's devices, grants, role and safety number");
    c->add_option("PLAN", a->plan, plan_help)->required();
    c->add_option("--verify", a->verify,
                  "Mark MEMBER verified, once you have compared your safety number with theirs "
                  "(account id or its start)");
    c->add_flag("--yes", a->yes, "Do not ask for confirmation (needed in scripts with --verify)");
    c->footer("As this device last synced; `kith sync` brings recent joins.");
    bind(c, a, members);
  }
  {
    auto a = std::make_shared<Args>();
    auto* c = app.add_subcommand("grant", "Set a member's permission on one section");
    c->add_option("PLAN", a->plan, plan_help)->required();
    c->add_option("MEMBER", a->member, kMemberHelp)->required();
    c->add_option("SECTION:PERM", a->grant,
                  "e.g. health:read; PERM is read, append (add, edit only their own), write or "
                  "manage (also give others access)")
        ->required();
    c->add_option("--expires", a->expires,
                  "When the grant ends (default never): a duration (30m, 12h, 7d, 2w) or a UTC "
                  "date or time (2025-06-01, 2025-06-01T14:30)");
    bind(c, a, grant);
  }
  {
    auto a = std::make_shared<Args>();
    auto* c = app.add_subcommand(
        "name",
        "Call a member by a name of your choosing, on this device only (or, for yourself, "
        "change the name you share with the plan's circle)");
    c->add_option("PLAN", a->plan, plan_help)->required();
    c->add_option("MEMBER", a->member, kMemberHelp)->required();
    c->add_option("NAME", a->name, "What to call them, e.g. \"Nia (district nurse)\"")->required();
    c->footer(
        "A name you give someone is sealed in this device's store and never sent anywhere; it\n"
        "comes before the name they share. Your own name is shared sealed with the circle.");
    bind(c, a, name);
  }
  {
    auto a = std::make_shared<Args>();
    auto* c = app.add_subcommand(
        "revoke", "Remove a member's access to the plan, or to one SECTION, replacing its keys");
    c->add_option("PLAN", a->plan, plan_help)->required();
    c->add_option("MEMBER", a->member, kMemberHelp)->required();
    c->add_option("SECTION", a->section, "Only this section (default: every section)");
    c->add_flag("--yes", a->yes, "Do not ask for confirmation (needed in scripts)");
    c->footer(
        "The member keeps what they had already synced and gets nothing new: each section they "
        "could read gets a new key.");
    bind(c, a, revoke);
  }
}

}  // namespace kith::cli
