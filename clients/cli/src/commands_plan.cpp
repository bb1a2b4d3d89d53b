// kith plan create, kith plan list [--remote].
#include <memory>
#include <set>

#include "context.hpp"
#include "kith/cli/discovery.hpp"
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

void print_local(Context& ctx, const nlohmann::json& plans) {
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

// --remote: the server's list for this account, each plan marked on this device or not, then
// the plans only this device holds.
void print_remote(Context& ctx, const std::string& url, const nlohmann::json& local,
                  const std::vector<DiscoveredPlan>& found) {
  std::set<std::string> listed;
  if (found.empty()) {
    ctx.out << "The server " << url << " lists no plans for your account.\n";
  } else {
    ctx.out << "Plans your account is in, as " << url << " lists them:\n";
  }
  for (const DiscoveredPlan& d : found) {
    const std::string id = d.server.plan.hex();
    listed.insert(id);
    ctx.out << "  " << id << "  " << describe_discovered(d) << "\n    ";
    if (d.on_this_device()) {
      ctx.out << "on this device: " << *d.title << "\n";
    } else if (d.server.expired) {
      ctx.out << "not linked here (your access has expired)\n";
    } else {
      ctx.out << "not linked here: `kith device link " << id << "`\n";
    }
  }
  if (plans_to_link(found).size() > 1) {
    ctx.out << "`kith device link --all` links every plan not linked here.\n";
  }
  nlohmann::json only_here = nlohmann::json::array();
  for (const auto& p : local) {
    if (!listed.contains(p["id"].get<std::string>())) only_here.push_back(p);
  }
  if (!only_here.empty()) {
    ctx.out << "Only on this device (not sent yet, or your access was removed); `kith sync` "
               "sends what is new:\n";
    print_local(ctx, only_here);
  }
}

void list(Context& ctx, bool remote) {
  // A missing server is refused before the passphrase is asked for.
  const std::optional<ServerOptions> server =
      remote ? std::optional(ctx.require_server()) : std::nullopt;
  Device device = ctx.open(Device::Access::kRead);
  const nlohmann::json plans = plans_json(device.engine());
  if (server) {
    // A failure (unreachable, untrusted, refused) ends the command with its one-line reason;
    // nothing here changes either way.
    const std::vector<DiscoveredPlan> found = discover_plans(device, *server);
    if (ctx.opts.json) {
      ctx.emit(
          {{"plans", plans}, {"server", server->url}, {"server_plans", discovered_json(found)}});
    } else {
      print_remote(ctx, server->url, plans, found);
    }
    return;
  }
  if (ctx.opts.json) {
    ctx.emit({{"plans", plans}});
    return;
  }
  if (plans.empty()) {
    ctx.out << "No plans on this device. `kith plan create TITLE` makes one; "
               "`kith plan list --remote` asks the server which plans your account is in.\n";
    return;
  }
  print_local(ctx, plans);
}

}  // namespace

void register_plan_commands(CLI::App& app, Context& ctx) {
  auto* plan = app.add_subcommand("plan", "Create a plan, or list the plans on this device");
  plan->require_subcommand(0, 1);

  auto* create_cmd = plan->add_subcommand("create", "Create a plan owned by you (prints its id)");
  auto title = std::make_shared<std::string>();
  create_cmd->add_option("TITLE", *title, "What to call the plan, e.g. \"Ada's plan\"")->required();
  create_cmd->callback([&ctx, title] { ctx.action = [&ctx, title] { create(ctx, *title); }; });

  auto* list_cmd = plan->add_subcommand(
      "list", "List the plans on this device (with --remote, also those the server lists)");
  auto remote = std::make_shared<bool>(false);
  list_cmd->add_flag("--remote", *remote,
                     "Also ask the server (--server) which plans your account is in, and mark "
                     "each as on this device or not linked here (`kith device link`)");
  list_cmd->callback([&ctx, remote] { ctx.action = [&ctx, remote] { list(ctx, *remote); }; });
}

}  // namespace kith::cli
