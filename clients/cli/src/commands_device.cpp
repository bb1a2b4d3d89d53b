// kith device link, kith device list: another device of the same person in a plan. A device made
// with `kith init --recover` holds no plans; `link` follows one by its id, brings its membership
// log, adds this device to it (the device's certificate, signed by the restored identity key,
// is the proof) and sends that. The keys come with it from the account's recovery envelopes
// (docs/PROTOCOL.md, "Recovery envelopes"); any the account's devices never sealed come later,
// from a device of the plan's owner or of a manager of each section, when it next syncs.
#include <algorithm>
#include <memory>

#include "context.hpp"
#include "kith/cli/refs.hpp"
#include "kith/sync/error.hpp"

namespace kith::cli {
namespace {

struct LinkArgs {
  std::string plan;
  std::string title;
};

sync::PlanId parse_plan_id(const std::string& text) {
  try {
    return sync::PlanId::parse(text);
  } catch (const sync::SyncError&) {
    throw CliError(Exit::kUsage, "bad_plan_id",
                   "'" + text + "' is not a plan id (" + std::to_string(2 * sync::PlanId::kSize) +
                       " hex digits; `kith plan list --json` on another of your devices shows it)");
  }
}

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
                       " (or there is no such plan); ask its owner for an invite and use "
                       "`kith join CODE`");
  }
  throw CliError(Exit::kNetwork, "server_refused",
                 "the server refused (" + e.code + "): " + e.message);
}

void link(Context& ctx, const LinkArgs& a) {
  const sync::PlanId plan = parse_plan_id(a.plan);
  const ServerOptions server = ctx.require_server();
  Device device = ctx.open(Device::Access::kWrite);
  const sync::AccountId me = device.engine().identity().account();
  const sync::DeviceId this_device = device.engine().identity().device();

  bool held = false;
  for (const auto& [id, title] : device.engine().plans()) held |= id == plan;
  if (held && device.engine().membership(plan).account_of(this_device)) {
    throw CliError(
        Exit::kFailed, "already_linked",
        "this device is in plan " + plan.short_hex() + " already; `kith sync` updates it");
  }
  const std::string title = a.title.empty() ? "plan " + plan.short_hex() : a.title;
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
                         "; ask its owner for an invite and use `kith join CODE`");
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

  if (ctx.opts.json) {
    ctx.emit({{"plan", plan.hex()},
              {"title", title},
              {"device", this_device.hex()},
              {"linked", true},
              {"records", device.engine().state(plan).records().size()}});
    return;
  }
  const std::size_t records = device.engine().state(plan).records().size();
  ctx.out << "Linked this device to " << title << " (" << plan.short_hex() << ").\n";
  if (records > 0) {
    ctx.out << "The keys came back with your recovery key: " << records
            << " records are readable here now (`kith show " << plan.short_hex() << "`).\n";
  } else {
    ctx.out << "Its content appears here once a device of the plan's owner or of a manager "
               "syncs:\nthat device hands over the keys to this one. Then `kith sync` here shows "
               "it.\n";
  }
}

void list_devices(Context& ctx, const std::string& ref) {
  Device device = ctx.open(Device::Access::kRead);
  const auto& engine = device.engine();
  const sync::PlanId plan = resolve_plan(engine, ref);
  const sync::AccountId me = engine.identity().account();
  const sync::DeviceId this_device = engine.identity().device();
  std::vector<sync::DeviceId> mine;
  for (const auto& m : engine.membership(plan).members()) {
    if (m.account == me) mine = m.devices;
  }
  const bool linked = std::find(mine.begin(), mine.end(), this_device) != mine.end();
  if (ctx.opts.json) {
    nlohmann::json devices = nlohmann::json::array();
    for (const auto& d : mine) devices.push_back({{"id", d.hex()}, {"this", d == this_device}});
    ctx.emit({{"plan", plan.hex()}, {"devices", devices}, {"this_device_linked", linked}});
    return;
  }
  if (mine.empty()) {
    ctx.out << "None of your devices is in this plan's membership log yet.\n";
  }
  for (const auto& d : mine) {
    ctx.out << d.hex() << (d == this_device ? "  (this device)" : "") << "\n";
  }
  if (!linked) {
    ctx.out << "This device (" << this_device.short_hex()
            << ") is not in the plan yet; `kith device link PLAN_ID` adds it.\n";
  }
}

}  // namespace

void register_device_commands(CLI::App& app, Context& ctx) {
  auto* dev = app.add_subcommand("device", "Your other devices in a plan");
  dev->require_subcommand(1);

  auto a = std::make_shared<LinkArgs>();
  auto* l = dev->add_subcommand(
      "link", "On a device made with `init --recover`: add it to PLAN_ID (needs a server)");
  l->add_option("PLAN_ID", a->plan,
                "The plan's full id (`kith plan list --json` on another device)")
      ->required();
  l->add_option("--title", a->title, "What to call the plan on this device");
  l->callback([&ctx, a] { ctx.action = [&ctx, a] { link(ctx, *a); }; });

  auto plan = std::make_shared<std::string>();
  auto* ls = dev->add_subcommand("list", "Your devices in PLAN, this one marked");
  ls->add_option("PLAN", *plan, kPlanHelp)->required();
  ls->callback([&ctx, plan] { ctx.action = [&ctx, plan] { list_devices(ctx, *plan); }; });
}

}  // namespace kith::cli
