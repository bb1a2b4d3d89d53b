// kith device link, kith device list: another device of the same person in a plan. A device made
// with `kith init --recover` holds no plans; `link` follows one by its id, brings its membership
// log, adds this device to it (the device's certificate, signed by the restored identity key,
// is the proof) and sends that. The keys come with it from the account's recovery envelopes
// (docs/PROTOCOL.md, "Recovery envelopes"); any the account's devices never sealed come later,
// from a device of the plan's owner or of a manager of each section, when it next syncs.
#include <algorithm>
#include <memory>

#include "context.hpp"
#include "kith/cli/link.hpp"
#include "kith/cli/refs.hpp"
#include "kith/sync/error.hpp"

namespace kith::cli {
namespace {

struct LinkArgs {
  std::string plan;
  std::string title;
};

void link(Context& ctx, const LinkArgs& a) {
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
