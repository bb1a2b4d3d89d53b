// kith plan create, kith plan list.
#include <memory>

#include "context.hpp"
#include "kith/cli/render.hpp"

namespace kith::cli {
namespace {

void create(Context& ctx, const std::string& title) {
  if (title.empty()) throw CliError(Exit::kUsage, "usage", "the plan's title must not be empty");
  Device device = ctx.open(Device::Access::kWrite);
  const sync::PlanId id = device.engine().create_plan(title);
  if (ctx.opts.json) {
    ctx.emit({{"id", id.hex()}, {"title", title}});
  } else {
    ctx.out << id.hex() << "\n";
  }
}

void list(Context& ctx) {
  Device device = ctx.open(Device::Access::kRead);
  const auto& engine = device.engine();
  const nlohmann::json plans = plans_json(engine);
  if (ctx.opts.json) {
    ctx.emit({{"plans", plans}});
    return;
  }
  if (plans.empty()) {
    ctx.out << "No plans on this device. `kith plan create TITLE` makes one.\n";
    return;
  }
  for (const auto& p : plans) {
    ctx.out << p["id"].get<std::string>().substr(0, 8) << "  " << p["title"].get<std::string>()
            << "  (" << count_of(p["records"], "record", "records");
    if (p["conflicts"] > 0) ctx.out << ", " << count_of(p["conflicts"], "conflict", "conflicts");
    if (p["waiting"] > 0) {
      ctx.out << ", " << count_of(p["waiting"], "change", "changes") << " waiting to upload";
    }
    ctx.out << ")\n";
  }
}

}  // namespace

void register_plan_commands(CLI::App& app, Context& ctx) {
  auto* plan = app.add_subcommand("plan", "Create a plan, or list the plans on this device");
  plan->require_subcommand(0, 1);

  auto* create_cmd = plan->add_subcommand("create", "Create a plan owned by you (prints its id)");
  auto title = std::make_shared<std::string>();
  create_cmd->add_option("TITLE", *title, "What to call the plan, e.g. \"Ada's plan\"")->required();
  create_cmd->callback([&ctx, title] { ctx.action = [&ctx, title] { create(ctx, *title); }; });

  auto* list_cmd = plan->add_subcommand("list", "List the plans on this device");
  list_cmd->callback([&ctx] { ctx.action = [&ctx] { list(ctx); }; });
}

}  // namespace kith::cli
