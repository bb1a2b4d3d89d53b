// kith log: the owner's access log — who read which section when, and who changed what.
#include <memory>

#include "context.hpp"
#include "kith/cli/circle.hpp"
#include "kith/cli/refs.hpp"

namespace kith::cli {
namespace {

struct Args {
  std::string plan;
  bool all = false;
};

void log_cmd(Context& ctx, const Args& a) {
  const std::string& plan_ref = a.plan;
  const ServerOptions server = ctx.require_server();
  Device device = ctx.open(Device::Access::kWrite);
  auto& engine = device.engine();
  const sync::PlanId plan = resolve_plan(engine, plan_ref);
  const sync::AccountId me = engine.identity().account();
  const auto owner = engine.membership(plan).owner();
  if (!owner || *owner != me) {
    throw CliError(Exit::kFailed, "not_owner",
                   "only the plan's owner can read its access log (the server keeps it for "
                   "them alone)");
  }
  SyncSession session(engine, server);
  session.connect();
  auto check = [&ctx](const PlanSync& r) {
    for (const auto& p : r.problems) ctx.err << "kith: warning: " << p << "\n";
    if (!r.errors.empty()) {
      throw CliError(
          Exit::kNetwork, "server_refused",
          "the server refused (" + r.errors.front().code + "): " + r.errors.front().message);
    }
  };
  check(session.sync_plan(plan));  // the changes, up to now
  check(session.fetch_access_log(plan));
  session.close();

  // The server logs every fetch, the owner's own devices' too; those say nothing the owner does
  // not know, and would bury the others' reads, so they are left out unless --all.
  std::vector<sync::AccessEvent> events;
  std::size_t own_reads = 0;
  for (auto& e : engine.access_log(plan)) {
    if (!a.all && e.kind == sync::AccessEvent::Kind::kRead && e.account == me) {
      ++own_reads;
      continue;
    }
    events.push_back(std::move(e));
  }
  const NameOf name = ctx.names(device, plan);
  auto who = [&](const sync::AccessEvent& e) -> std::string {
    if (e.account == me) return "you";
    if (e.account == sync::AccountId{}) return "a removed device";
    return name(e.account);
  };
  if (ctx.opts.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : events) {
      out.push_back({{"at", iso_utc(e.at_ms)},
                     {"at_ms", e.at_ms},
                     {"kind", std::string(access_kind_name(e.kind))},
                     {"who", who(e)},
                     {"account", e.account.hex()},
                     {"device", e.device.hex()},
                     {"section", e.section},
                     {"text", e.text}});
    }
    ctx.emit({{"plan", plan.hex()}, {"events", out}, {"own_reads_left_out", own_reads}});
    return;
  }
  if (events.empty()) ctx.out << "Nothing in the log yet.\n";
  // One sync reads several sections at once: the reads of one device in the same second up to
  // the same change, the same way, read as one line ("received notes, profile up to change 6").
  auto read_tail = [](const sync::AccessEvent& e) {
    const auto at = e.text.find(" up to ");
    return at == std::string::npos ? e.text : e.text.substr(at);
  };
  for (std::size_t i = 0; i < events.size();) {
    const auto& e = events[i];
    std::string text = e.text;
    std::size_t next = i + 1;
    if (e.kind == sync::AccessEvent::Kind::kRead) {
      std::string sections = e.section;
      while (next < events.size() && events[next].kind == sync::AccessEvent::Kind::kRead &&
             events[next].device == e.device && events[next].at_ms / 1000 == e.at_ms / 1000 &&
             read_tail(events[next]) == read_tail(e)) {
        sections += ", " + events[next].section;
        ++next;
      }
      text = "received " + sections + read_tail(e);
    }
    std::string w = who(e);
    w.resize(std::max<std::size_t>(w.size(), 16), ' ');
    ctx.out << iso_utc(e.at_ms) << "  " << w << "  " << text << "\n";
    i = next;
  }
  if (own_reads) {
    ctx.out << "(" << count_of(own_reads, "read", "reads")
            << " by your own devices left out; --all shows them)\n";
  }
}

}  // namespace

void register_log_commands(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand(
      "log", "Who read which section when, and who changed what (the owner only; syncs first)");
  c->add_option("PLAN", a->plan, kPlanHelp)->required();
  c->add_flag("--all", a->all, "Also the reads by your own devices");
  c->footer(
      "Times are UTC: reads by the server's clock, changes by the clock of the device that made "
      "them.");
  c->callback([&ctx, a] { ctx.action = [&ctx, a] { log_cmd(ctx, *a); }; });
}

}  // namespace kith::cli
