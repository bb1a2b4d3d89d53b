// kith device link, kith device list: another device of the same person in a plan. A device made
// with `kith init --recover` holds no plans; `link` follows one by its id, brings its membership
// log, adds this device to it (the device's certificate, signed by the restored identity key,
// is the proof) and sends that. The keys come with it from the account's recovery envelopes
// (docs/PROTOCOL.md, "Recovery envelopes"); any the account's devices never sealed come later,
// from a device of the plan's owner or of a manager of each section, when it next syncs.
// `link --all` asks the server which plans the account is in (ListPlans) and links each one this
// device does not hold.
#include <algorithm>
#include <memory>

#include "context.hpp"
#include "kith/cli/discovery.hpp"
#include "kith/cli/link.hpp"
#include "kith/cli/refs.hpp"
#include "kith/sync/error.hpp"

namespace kith::cli {
namespace {

struct LinkArgs {
  std::string plan;
  std::string title;
  bool all = false;
};

// Every plan the server lists for the account that this device does not hold and whose access
// has not expired, one at a time: each is linked whole or not at all (link_this_device), so a
// failure leaves the plans linked before it and stops there with its reason.
void link_all(Context& ctx) {
  const ServerOptions server = ctx.require_server();
  Device device = ctx.open(Device::Access::kWrite);
  const std::vector<DiscoveredPlan> found = discover_plans(device, server);
  nlohmann::json linked = nlohmann::json::array();
  for (const sync::PlanId& plan : plans_to_link(found)) {
    const std::string title = "plan " + plan.short_hex();
    try {
      link_this_device(device, server, plan, title);
    } catch (...) {
      const CliError e = to_cli_error(std::current_exception());
      throw CliError(e.exit(), e.code(),
                     "linked " + std::to_string(linked.size()) + " plans, then plan " +
                         plan.short_hex() + " failed: " + e.what() +
                         " (`kith device link --all` again tries the rest)");
    }
    const std::size_t records = device.engine().state(plan).records().size();
    linked.push_back({{"plan", plan.hex()}, {"title", title}, {"records", records}});
    if (!ctx.opts.json) {
      ctx.out << "Linked " << title << ": " << count_of(records, "record", "records")
              << " readable here now.\n";
    }
  }
  nlohmann::json expired = nlohmann::json::array();
  std::size_t already = 0;
  for (const DiscoveredPlan& d : found) {
    if (d.on_this_device()) {
      ++already;
    } else if (d.server.expired) {
      expired.push_back(d.server.plan.hex());
    }
  }
  if (ctx.opts.json) {
    ctx.emit({{"linked", linked}, {"already_here", already}, {"expired", expired}});
    return;
  }
  if (linked.empty()) {
    ctx.out << (found.empty() ? "The server lists no plans for your account.\n"
                              : "Nothing to link: every plan your account is in is on this "
                                "device already.\n");
  }
  for (const auto& id : expired) {
    ctx.out << "Not linked: plan " << id.get<std::string>().substr(0, 8)
            << " (your access has expired; ask the plan's owner).\n";
  }
  if (!linked.empty()) {
    // Titles are sealed on each device and never reach the server.
    ctx.out << "Each is called \"plan ID\" here; `kith show PLAN` reads one. Records whose keys "
               "were not sealed for recovery appear once a device of the owner or a manager "
               "syncs.\n";
  }
}

void link(Context& ctx, const LinkArgs& a) {
  if (a.all != a.plan.empty()) {
    throw CliError(Exit::kUsage, "usage",
                   a.all ? "give either PLAN_ID or --all, not both"
                         : "give the PLAN_ID to link, or --all for every plan the server lists");
  }
  if (a.all) {
    if (!a.title.empty()) throw CliError(Exit::kUsage, "usage", "--title goes with one PLAN_ID");
    return link_all(ctx);
  }
  const sync::PlanId plan = parse_plan_id(a.plan);
  const ServerOptions server = ctx.require_server();
  Device device = ctx.open(Device::Access::kWrite);
  const sync::DeviceId this_device = device.engine().identity().device();
  const std::string title = a.title.empty() ? "plan " + plan.short_hex() : a.title;
  link_this_device(device, server, plan, title);

  if (ctx.opts.json) {
    ctx.emit({{"plan", plan.hex()},
              {"title", title},
              {"device", this_device.hex()},
              {"linked", true},
              {"records", plan_records(device.engine().state(plan)).size()}});
    return;
  }
  const std::size_t records = plan_records(device.engine().state(plan)).size();
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
      "link",
      "On a device made with `init --recover`: add it to PLAN_ID, or with --all to every plan "
      "the server lists for your account (needs a server)");
  l->add_option("PLAN_ID", a->plan, "The plan's full id (`kith plan list --remote` shows the ids)");
  l->add_flag("--all", a->all,
              "Link every plan the server lists for your account that is not on this device "
              "(plans whose access has expired are left out)");
  l->add_option("--title", a->title, "What to call the plan on this device");
  l->callback([&ctx, a] { ctx.action = [&ctx, a] { link(ctx, *a); }; });

  auto plan = std::make_shared<std::string>();
  auto* ls = dev->add_subcommand("list", "Your devices in PLAN, this one marked");
  ls->add_option("PLAN", *plan, kPlanHelp)->required();
  ls->callback([&ctx, plan] { ctx.action = [&ctx, plan] { list_devices(ctx, *plan); }; });
}

}  // namespace kith::cli
