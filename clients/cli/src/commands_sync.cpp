// kith sync, kith watch: the only commands that talk to the server.
#include <signal.h>

#include <atomic>
#include <memory>
#include <optional>
#include <thread>

#include "context.hpp"
#include "kith/cli/refs.hpp"

namespace kith::cli {
namespace {

using client::TransportError;

std::uint64_t waiting_total(const sync::SyncEngine& engine,
                            const std::vector<std::pair<sync::PlanId, std::string>>& plans) {
  std::uint64_t n = 0;
  for (const auto& [id, title] : plans) n += engine.outbox_size(id);
  return n;
}

// Re-throws a transport failure with what is still waiting, so a person knows nothing was lost.
[[noreturn]] void fail_with_waiting(std::uint64_t waiting) {
  CliError e = to_cli_error(std::current_exception());
  std::string msg = e.what();
  if (waiting > 0) msg += "; " + count_of(waiting, "change", "changes") + " waiting to upload";
  throw CliError(e.exit(), e.code(), msg);
}

void sync_cmd(Context& ctx, const std::string& plan_ref) {
  const ServerOptions server = ctx.require_server();
  Device device = ctx.open(Device::Access::kWrite);
  auto& engine = device.engine();
  std::vector<std::pair<sync::PlanId, std::string>> plans;
  if (!plan_ref.empty()) {
    const sync::PlanId id = resolve_plan(engine, plan_ref);
    for (const auto& p : engine.plans()) {
      if (p.first == id) plans.push_back(p);
    }
  } else {
    plans = engine.plans();
  }

  SyncSession session(engine, server);
  try {
    session.connect();
  } catch (...) {
    fail_with_waiting(waiting_total(engine, plans));
  }

  const bool bar = ctx.terminal.stdout_is_tty && !ctx.opts.json;
  nlohmann::json results = nlohmann::json::array();
  std::vector<ServerProblem> errors;
  std::string refused_title;  // of the plan the first error is about
  for (const auto& [id, title] : plans) {
    std::uint64_t batches = 0;
    ProgressFn progress;
    if (bar) {
      // The server does not say how long a catch-up is until it ends, so this shows how far it
      // has come rather than a percentage.
      progress = [&, t = title](const sync::PlanId&, std::uint64_t seq, bool more) {
        ++batches;
        std::string dots(std::min<std::uint64_t>(batches, 30), '#');
        dots.resize(30, '.');
        ctx.out << "\r" << t << " [" << dots << "] change " << seq << (more ? " ..." : "    ")
                << std::flush;
      };
    }
    PlanSync r;
    try {
      r = session.sync_plan(id, progress);
    } catch (...) {
      if (bar && batches) ctx.out << "\n";
      fail_with_waiting(waiting_total(engine, plans));
    }
    if (bar && batches) ctx.out << "\r" << std::string(title.size() + 50, ' ') << "\r";
    // A grant that expired calls for new keys for what that member could read; any device of a
    // manager may make them (none for plans this account does not manage).
    std::vector<std::string> rotated;
    for (const auto& section : engine.rotate_expired(id)) rotated.push_back(section.name());
    if (!rotated.empty()) {
      try {
        const PlanSync again = session.sync_plan(id);
        r.sent += again.sent;
        r.received += again.received;
        r.waiting = again.waiting;
        r.server_seq = again.server_seq;
        r.problems.insert(r.problems.end(), again.problems.begin(), again.problems.end());
        r.errors.insert(r.errors.end(), again.errors.begin(), again.errors.end());
      } catch (...) {
        fail_with_waiting(waiting_total(engine, plans));
      }
    }
    for (const auto& p : r.problems) ctx.err << "kith: warning: " << title << ": " << p << "\n";
    if (errors.empty() && !r.errors.empty()) refused_title = title;
    for (const auto& e : r.errors) errors.push_back({e.code, title + ": " + e.message});
    nlohmann::json errs = nlohmann::json::array();
    for (const auto& e : r.errors) errs.push_back({{"code", e.code}, {"message", e.message}});
    results.push_back({{"plan", id.hex()},
                       {"title", title},
                       {"sent", r.sent},
                       {"received", r.received},
                       {"waiting", r.waiting},
                       {"server_seq", r.server_seq},
                       {"problems", r.problems},
                       {"rotated", rotated},
                       {"errors", errs}});
    if (!ctx.opts.json) {
      ctx.out << title << ": sent " << count_of(r.sent, "change", "changes") << ", received "
              << count_of(r.received, "change", "changes") << "; "
              << count_of(r.waiting, "change", "changes") << " waiting to upload\n";
      if (!rotated.empty()) {
        std::string names;
        for (const auto& n : rotated) names += (names.empty() ? "" : ", ") + n;
        ctx.out << title << ": replaced the keys of " << names << " because a grant expired\n";
      }
    }
  }
  session.close();
  if (!errors.empty()) {
    const ServerProblem& first = errors.front();
    // A plan this device was in whose server now says it is not: access ended (revoked) or ran
    // out (expired). What was synced stays here; the server sends nothing new.
    if (first.code == "not_member" || first.code == "grant_expired") {
      const bool expired = first.code == "grant_expired";
      throw CliError(Exit::kFailed, expired ? "access_expired" : "access_ended",
                     refused_title + ": your access " + (expired ? "has expired" : "has ended") +
                         "; what this device synced before stays here, and nothing new will "
                         "come (ask the plan's owner if you need it back)");
    }
    throw CliError(Exit::kNetwork, "server_refused",
                   "the server refused (" + first.code + "): " + first.message);
  }
  if (ctx.opts.json) {
    ctx.emit({{"server", server.url}, {"plans", results}});
  } else if (plans.empty()) {
    ctx.out << "No plans on this device yet; this device is registered with " << server.url
            << ".\n";
  }
}

// SIGINT / SIGTERM end `kith watch`; the handler only sets a flag.
std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop.store(true); }

class StopSignals {
 public:
  StopSignals() {
    g_stop.store(false);
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a blocked call returns and the loop sees the flag
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopSignals() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

// Failures that waiting will not cure: stop rather than retry.
bool worth_retrying(const TransportError& e) {
  using K = TransportError::Kind;
  switch (e.kind()) {
    case K::kUnreachable:
    case K::kTimeout:
    case K::kClosed:
      return true;
    case K::kServerError:
      return e.server_code() == kith::v1::SHUTTING_DOWN ||
             e.server_code() == kith::v1::SERVER_BUSY ||
             e.server_code() == kith::v1::RATE_LIMITED || e.server_code() == kith::v1::SLOW_READER;
    default:
      return false;
  }
}

void sleep_unless_stopped(std::chrono::milliseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (!g_stop.load() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void watch_cmd(Context& ctx, const std::string& plan_ref) {
  const ServerOptions server = ctx.require_server();
  Device device = ctx.open(Device::Access::kWrite);
  const sync::PlanId plan = resolve_plan(device.engine(), plan_ref);
  auto name = ctx.names(device, plan);
  StopSignals signals;

  auto print_event = [&](const sync::SyncEvent& e) {
    if (e.plan != plan) return;
    using K = sync::SyncEvent::Kind;
    if (e.kind == K::kProblem) {
      ctx.err << "kith: warning: " << sync::sync_error_code_name(e.code) << ": " << e.message
              << "\n";
      return;
    }
    if (e.kind != K::kRecordChanged && e.kind != K::kConflict) return;
    const auto view = device.engine().state(plan).record(e.record);
    if (ctx.opts.json) {
      nlohmann::json j{{"event", e.kind == K::kConflict ? "conflict" : "changed"},
                       {"plan", plan.hex()},
                       {"record", e.record.hex()}};
      if (e.kind == K::kConflict) j["field"] = e.field;
      if (view) j["view"] = record_json(*view, name);
      if (!view) j["deleted"] = true;
      ctx.out << j.dump() << "\n" << std::flush;
      return;
    }
    if (e.kind == K::kConflict) {
      ctx.out << "conflict  " << e.record.short_hex() << " field '" << e.field
              << "': concurrent edits; `kith conflicts PLAN`\n";
    } else if (view) {
      ctx.out << "changed   " << e.record.short_hex() << "  " << view->type << "  "
              << record_summary(*view) << "\n";
    } else {
      ctx.out << "deleted   " << e.record.short_hex() << "\n";
    }
    ctx.out << std::flush;
  };

  // Another kith command in this home (an `add` in another terminal) waits for the lock: watch
  // closes its connection, saves and lets go, then takes the lock back once that command is done
  // and connects again; the subscription then uploads what the command left waiting.
  const auto stopped = [] { return g_stop.load(); };
  const auto stop_or_yield = [&] { return g_stop.load() || device.others_waiting(); };
  auto take_back = [&] {
    if (!device.paused()) return true;
    if (!device.resume(stopped)) return false;
    name = ctx.names(device, plan);  // another command may have renamed someone
    return true;
  };
  bool announce = true;
  unsigned attempt = 0;
  while (!g_stop.load() && take_back()) {
    std::optional<std::chrono::milliseconds> retry_in;
    {
      SyncSession session(device.engine(), server);  // gone before the engine is paused
      try {
        session.connect();
        if (announce) {
          ctx.err << "kith: watching " << plan_ref << " on " << server.url << " (Ctrl-C to stop)\n";
        }
        announce = false;
        attempt = 0;
        session.follow(plan, print_event, stop_or_yield);
        session.close();
      } catch (const TransportError& e) {
        if (g_stop.load()) break;
        if (!worth_retrying(e)) throw;
        retry_in = backoff_delay(attempt++);
        ctx.err << "kith: " << e.what() << "; trying again in "
                << std::chrono::duration<double>(*retry_in).count() << " s\n";
        announce = true;
      }
    }
    if (g_stop.load()) break;
    // Someone waits for the home, or the server is out of reach for a while: let go meanwhile.
    device.pause();
    if (retry_in) sleep_unless_stopped(*retry_in);
  }
  ctx.err << "kith: stopped watching\n";
  if (ctx.opts.json) ctx.emit({{"event", "stopped"}, {"plan", plan.hex()}});
}

}  // namespace

void register_sync_commands(CLI::App& app, Context& ctx) {
  auto plan = std::make_shared<std::string>();
  auto* s = app.add_subcommand("sync", "Push and pull once: every plan, or PLAN");
  s->add_option("PLAN", *plan, kPlanHelp);
  s->callback([&ctx, plan] { ctx.action = [&ctx, plan] { sync_cmd(ctx, *plan); }; });

  auto watched = std::make_shared<std::string>();
  auto* w = app.add_subcommand("watch", "Stay connected and print changes to PLAN as they arrive");
  w->add_option("PLAN", *watched, kPlanHelp)->required();
  w->callback([&ctx, watched] { ctx.action = [&ctx, watched] { watch_cmd(ctx, *watched); }; });
}

}  // namespace kith::cli
