// kith invite, kith join: bringing someone into the circle of support with a one-time code.
#include <algorithm>
#include <memory>

#include "context.hpp"
#include "kith/cli/circle.hpp"
#include "kith/cli/names.hpp"
#include "kith/cli/qr.hpp"
#include "kith/cli/refs.hpp"
#include "kith/crypto/safety_number.hpp"
#include "kith/sync/error.hpp"
#include "kith/sync/roles.hpp"

namespace kith::cli {
namespace {

constexpr std::uint64_t kDefaultInviteMs = 7ull * 24 * 3600 * 1000;

struct InviteArgs {
  std::string plan;
  std::string role;
  std::vector<std::string> grants;
  std::string expires;
  std::string name;
  bool qr = false;
};

struct JoinArgs {
  std::string code;
  std::string title;
};

nlohmann::json grants_json(const std::vector<sync::GrantSpec>& grants) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& g : grants) {
    nlohmann::json j{{"section", g.section.name()},
                     {"permission", std::string(sync::permission_name(g.permission))}};
    if (g.expires_at_ms != 0) j["expires_at"] = iso_utc(g.expires_at_ms);
    out.push_back(j);
  }
  return out;
}

// The preset's grants with each --grant added, or replacing the preset's for that section.
std::vector<sync::GrantSpec> invite_grants(const InviteArgs& a) {
  std::vector<sync::GrantSpec> grants;
  if (a.role != "custom") {
    const auto role = sync::parse_role(a.role);
    if (!role) {
      throw CliError(
          Exit::kUsage, "bad_role",
          "'" + a.role + "' is not a role; use family, nurse, provider, social-worker or custom");
    }
    grants = sync::role_grants(*role);
  } else if (a.grants.empty()) {
    throw CliError(Exit::kUsage, "usage", "--role custom needs at least one --grant SECTION:PERM");
  }
  for (const auto& text : a.grants) {
    const sync::GrantSpec g = parse_grant(text);
    auto same = std::find_if(grants.begin(), grants.end(),
                             [&](const sync::GrantSpec& x) { return x.section == g.section; });
    if (same != grants.end()) {
      *same = g;
    } else {
      grants.push_back(g);
    }
  }
  return grants;
}

void invite(Context& ctx, const InviteArgs& a) {
  // Everything that can be checked without the keys is checked before asking for them.
  const std::vector<sync::GrantSpec> grants = invite_grants(a);
  const std::uint64_t now = now_ms();
  const std::uint64_t expires =
      a.expires.empty() ? now + kDefaultInviteMs : parse_when(a.expires, now);
  if (!a.name.empty()) check_name(a.name);
  if (a.qr && !qr_available()) {
    throw CliError(Exit::kUsage, "no_qr", "this kith was built without QR code support");
  }
  Device device = ctx.open(Device::Access::kWrite);
  auto& engine = device.engine();
  const sync::PlanId plan = resolve_plan(engine, a.plan);
  const sync::InviteCode invitation = engine.invite(plan, grants, expires);
  const std::string code = invitation.text();
  // Whoever accepts it is called this on this device (kith/cli/names.hpp).
  if (!a.name.empty()) device.store().set_name(plan, invitation.invite_id().bytes(), a.name);
  const Context::Attempt sent = ctx.try_sync(device, plan);
  const std::string title = plan_title(engine, plan);

  if (ctx.opts.json) {
    nlohmann::json j{{"plan", plan.hex()},
                     {"title", title},
                     {"role", a.role},
                     {"code", code},
                     {"grants", grants_json(grants)},
                     {"expires_at", iso_utc(expires)},
                     {"expires_at_ms", expires},
                     {"sent", sent.sent}};
    if (!a.name.empty()) j["name"] = a.name;
    if (!sent.sent) j["not_sent_because"] = sent.why_not;
    ctx.emit(j);
    return;
  }
  ctx.out << "Invitation to \"" << title << "\" as " << a.role
          << (a.name.empty() ? "" : " for " + a.name) << ":\n"
          << "  " << grants_in_words(grants) << "\n"
          << "  the code works once, until " << iso_utc(expires) << "\n\n"
          << "    " << code << "\n\n";
  if (a.qr || ctx.terminal.stdout_is_tty) {
    const std::string qr = qr_text(code);
    if (!qr.empty()) ctx.out << qr << "\n";
  }
  ctx.out << "Give it to the person you invite in person or by a private message: anyone\n"
             "holding it can join. They join with `kith join CODE`.\n";
  if (sent.sent) {
    ctx.out << "The invitation is on the server: it works now, even while this device is "
               "offline.\n";
  } else {
    ctx.out << "Not sent yet (" << sent.why_not
            << "): the invitation goes out at the next `kith sync` and won't work until then.\n";
  }
}

// The one-line reason and the status for a join the engine or the server refused.
[[noreturn]] void join_refused(const PlanSync& r) {
  using C = sync::SyncErrorCode;
  for (std::size_t i = 0; i < r.problem_codes.size(); ++i) {
    const C code = r.problem_codes[i];
    const std::string name(sync::sync_error_code_name(code));
    switch (code) {
      case C::kInviteUnknown:
        throw CliError(Exit::kNotFound, name,
                       "the server knows no such invitation: check the code, or ask for a new "
                       "one");
      case C::kInviteUsed:
        throw CliError(Exit::kFailed, name,
                       "this invitation has already been used; ask the person who invited you "
                       "for a new one");
      case C::kInviteExpired:
        throw CliError(Exit::kFailed, name,
                       "this invitation has expired; ask the person who invited you for a new "
                       "one");
      default: {
        std::string msg = r.problems[i];
        if (auto colon = msg.find(": "); colon != std::string::npos) msg.erase(0, colon + 2);
        throw CliError(Exit::kFailed, name, msg);
      }
    }
  }
  const auto& e = r.errors.front();
  throw CliError(Exit::kNetwork, "server_refused",
                 "the server refused (" + e.code + "): " + e.message);
}

void join(Context& ctx, const JoinArgs& a) {
  sync::InviteCode code = [&] {
    try {
      return sync::InviteCode::parse(a.code);
    } catch (const sync::SyncError& e) {
      throw CliError(Exit::kUsage, std::string(sync::sync_error_code_name(e.code())), e.what());
    }
  }();
  const ServerOptions server = ctx.require_server();
  Device device = ctx.open(Device::Access::kWrite);
  auto& engine = device.engine();
  const sync::PlanId plan = code.plan();
  for (const auto& [id, title] : engine.plans()) {
    if (id == plan) {
      throw CliError(Exit::kFailed, "already_joined",
                     "this device already holds that plan, as \"" + title + "\"");
    }
  }
  const std::string title = a.title.empty() ? "Plan " + plan.short_hex() : a.title;

  SyncSession session(engine, server);
  session.connect();
  const PlanSync r = session.join(code, title);
  session.close();
  const auto held = engine.plans();
  const bool joined =
      std::any_of(held.begin(), held.end(), [&](const auto& p) { return p.first == plan; });
  if (!joined) join_refused(r);
  for (const auto& p : r.problems) ctx.err << "kith: warning: " << title << ": " << p << "\n";

  const auto& log = engine.membership(plan);
  const sync::AccountId me = engine.identity().account();
  std::vector<sync::GrantSpec> grants;
  for (const auto& m : log.members()) {
    if (m.account != me) continue;
    for (const auto& [s, g] : m.grants) {
      if (g.permission != sync::Permission::kNone) grants.push_back(g);
    }
  }
  const sync::InviteInfo* inv = log.invite(code.invite_id());
  const std::optional<sync::AccountId> inviter = inv ? std::optional(inv->created_by) : log.owner();
  std::string half;
  if (inviter) {
    half = crypto::safety_number_half(crypto::VerifyKey::parse(inviter->bytes()));
    for (std::size_t i = 5; i < half.size(); i += 6) half.insert(i, " ");
  }
  const std::size_t records = plan_records(engine.state(plan)).size();

  if (ctx.opts.json) {
    nlohmann::json j{{"plan", plan.hex()},
                     {"title", title},
                     {"grants", grants_json(grants)},
                     {"records", records},
                     {"waiting", r.waiting}};
    if (inviter) {
      j["inviter"] = inviter->hex();
      j["inviter_safety_number"] = half;
    }
    ctx.emit(j);
    return;
  }
  ctx.out << "Joined \"" << title << "\" (plan " << plan.hex() << ").\n"
          << "You " << grants_in_words(grants) << ".\n"
          << count_of(records, "record", "records") << " to read now.\n";
  if (inviter) {
    ctx.out << "\nInvited by member " << inviter->short_hex() << ", whose safety number half is\n"
            << "    " << half << "\n"
            << "Compare it with theirs (`kith whoami` on their device) in person or by phone;\n"
            << "`kith members PLAN` shows the whole number and `--verify` records the check.\n";
  }
}

}  // namespace

void register_invite_commands(CLI::App& app, Context& ctx) {
  const char* plan_help = kPlanHelp;
  {
    auto a = std::make_shared<InviteArgs>();
    auto* c = app.add_subcommand("invite", "Print a one-time invite code to join a plan");
    c->add_option("PLAN", a->plan, plan_help)->required();
    c->add_option("--role", a->role,
                  "family, nurse, provider, social-worker, or custom (then --grant says what)")
        ->required();
    c->add_option("--grant", a->grants,
                  "SECTION:PERM, e.g. health:write; adds to the role's grants or replaces the "
                  "one for that section (PERM: read, append, write, manage); repeatable");
    c->add_option("--expires", a->expires,
                  "When the code stops working (default 7d): a duration (30m, 12h, 7d, 2w, "
                  "1d12h) or a UTC date or time (2025-06-01, 2025-06-01T14:30)");
    c->add_option("--name", a->name,
                  "What to call whoever accepts it, on this device only (never sent anywhere)");
    c->add_flag("--qr", a->qr, "Also print the code as a QR code (always done on a terminal)");
    c->footer(
        "Presets: family (profile, outcomes, support, activity, circle: read; notes: append);\n"
        "nurse (profile, risk, support: read; health: write; activity, notes: append);\n"
        "provider (profile, support, risk, outcomes: read; activity: append);\n"
        "social-worker (everything: read; assessment, budget, outcomes, support: write;\n"
        "circle: manage). The code is sent to the server at once when it can be, so the\n"
        "person can join while this device is offline.");
    c->callback([&ctx, a] { ctx.action = [&ctx, a] { invite(ctx, *a); }; });
  }
  {
    auto a = std::make_shared<JoinArgs>();
    auto* c = app.add_subcommand("join", "Accept an invite code: join the plan and sync it");
    c->add_option("CODE", a->code,
                  "The code you were given (KITH-...; case and spaces do not matter)")
        ->required();
    c->add_option("--title", a->title, "What to call the plan on this device");
    c->callback([&ctx, a] { ctx.action = [&ctx, a] { join(ctx, *a); }; });
  }
}

}  // namespace kith::cli
