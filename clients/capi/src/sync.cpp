// kith_sync_once, kith_invite_join, kith_plan_link, kith_plan_list_remote,
// kith_access_log_fetch: the calls that talk to kithd, each one conversation through
// kith_cli_core's SyncSession, with events handed to the home's callbacks.
#include "kith/cli/discovery.hpp"
#include "kith/cli/error.hpp"
#include "kith/cli/link.hpp"
#include "kith/cli/refs.hpp"
#include "kith/sync/error.hpp"
#include "session.hpp"

using kith::capi::guarded;
using kith::capi::handle;
using kith::capi::required;
namespace cli = kith::cli;
namespace ks = kith::sync;  // `sync` would clash with ::sync()

namespace kith::capi {

const cli::ServerOptions& require_server(const kith_home& h) {
  if (!h.server) {
    throw cli::CliError(cli::Exit::kNetwork, "no_server",
                        "no server set: call kith_home_set_server with wss://HOST:PORT first");
  }
  return *h.server;
}

void report_state(const kith_home& h, kith_sync_state state, const ks::PlanId* plan,
                  std::uint64_t server_seq, std::uint64_t waiting) {
  if (!h.on_sync_state) return;
  const std::string id = plan ? plan->hex() : std::string();
  h.on_sync_state(h.sync_state_user, state, plan ? id.c_str() : nullptr, server_seq, waiting);
}

std::unique_ptr<cli::SyncSession> open_session(kith_home& h) {
  auto s = std::make_unique<cli::SyncSession>(h.device.engine(), require_server(h));
  s->observe([&h](const ks::SyncEvent& e) {
    using K = ks::SyncEvent::Kind;
    const std::string plan = e.plan.hex();
    const std::string record = e.record.hex();
    if (e.kind == K::kRecordChanged && h.on_record_changed) {
      h.on_record_changed(h.record_changed_user, plan.c_str(), record.c_str(), e.field.c_str());
    } else if (e.kind == K::kConflict && h.on_conflict) {
      h.on_conflict(h.conflict_user, plan.c_str(), record.c_str(), e.field.c_str());
    } else if (e.kind == K::kProgress) {
      report_state(h, KITH_SYNC_PROGRESS, &e.plan, e.server_seq);
    }
  });
  report_state(h, KITH_SYNC_CONNECTING, nullptr);
  reporting_offline(h, nullptr, [&] { s->connect(); });
  return s;
}

void throw_if_refused(const cli::PlanSync& r, const std::string& what) {
  if (!r.problem_codes.empty()) {
    // Each problem reads "code: sentence"; the code travels as the status.
    std::string sentence = r.problems.front();
    if (const auto colon = sentence.find(": "); colon != std::string::npos) {
      sentence.erase(0, colon + 2);
    }
    throw ks::SyncError(r.problem_codes.front(), sentence);
  }
  if (!r.errors.empty()) {
    throw cli::CliError(
        cli::Exit::kNetwork, "server_refused",
        what + ": the server refused (" + r.errors.front().code + "): " + r.errors.front().message);
  }
}

}  // namespace kith::capi

namespace {

bool holds(const ks::SyncEngine& engine, const ks::PlanId& plan) {
  for (const auto& [id, title] : engine.plans()) {
    if (id == plan) return true;
  }
  return false;
}

}  // namespace

extern "C" {

kith_status kith_sync_once(kith_home* home, const char* plan) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    auto& engine = h.device.engine();
    std::vector<std::pair<ks::PlanId, std::string>> plans;
    if (auto ref = kith::capi::optional_arg(plan)) {
      const ks::PlanId id = cli::resolve_plan(engine, *ref);
      for (const auto& p : engine.plans()) {
        if (p.first == id) plans.push_back(p);
      }
    } else {
      plans = engine.plans();
    }
    auto session = kith::capi::open_session(h);
    std::optional<cli::PlanSync> refused;
    for (const auto& [id, title] : plans) {
      kith::capi::report_state(h, KITH_SYNC_PLAN, &id, engine.cursor(id), engine.outbox_size(id));
      const cli::PlanSync r =
          kith::capi::reporting_offline(h, &id, [&] { return session->sync_plan(id); });
      kith::capi::report_state(h, KITH_SYNC_PLAN_DONE, &id, r.server_seq, r.waiting);
      // One plan refused (e.g. this person was revoked from it) does not stop the others.
      if (!refused && !r.errors.empty()) refused = r;
    }
    session->close();
    kith::capi::report_state(h, KITH_SYNC_IDLE, nullptr);
    if (refused) {
      refused->problem_codes.clear();  // a sync's engine problems are warnings, not failures
      kith::capi::throw_if_refused(*refused, "syncing plan " + refused->plan.short_hex());
    }
  });
}

kith_status kith_plan_link(kith_home* home, const char* plan_id, const char* title,
                           uint64_t* records) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    const ks::PlanId plan = cli::parse_plan_id(std::string(required(plan_id, "the plan id")));
    const auto t = kith::capi::optional_arg(title);
    cli::link_this_device(h.device, kith::capi::require_server(h), plan,
                          t ? *t : "plan " + plan.short_hex());
    if (records) *records = cli::plan_records(h.device.engine().state(plan)).size();
  });
}

kith_status kith_plan_list_remote(kith_home* home, char** json) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    kith::capi::require_out(json, "json");
    auto session = kith::capi::open_session(h);
    const auto found = kith::capi::reporting_offline(
        h, nullptr, [&] { return cli::discover_plans(h.device, *session); });
    session->close();
    kith::capi::report_state(h, KITH_SYNC_IDLE, nullptr);
    *json = kith::capi::to_c(cli::discovered_json(found).dump());
  });
}

kith_status kith_invite_join(kith_home* home, const char* code, const char* title,
                             char** plan_id) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    // A malformed code is refused before anything is sent.
    const ks::InviteCode invite = ks::InviteCode::parse(required(code, "the invite code"));
    const std::string name = kith::capi::optional_arg(title).value_or("Shared plan");
    const ks::PlanId id = invite.plan();
    auto session = kith::capi::open_session(h);
    kith::capi::report_state(h, KITH_SYNC_PLAN, &id);
    const cli::PlanSync r =
        kith::capi::reporting_offline(h, &id, [&] { return session->join(invite, name); });
    session->close();
    const bool joined = holds(h.device.engine(), id);
    kith::capi::report_state(h, joined ? KITH_SYNC_PLAN_DONE : KITH_SYNC_IDLE, &id, r.server_seq,
                             r.waiting);
    if (!joined) {
      kith::capi::throw_if_refused(r, "the invitation could not be used");
      throw cli::CliError(cli::Exit::kFailed, "invite_unknown",
                          "the server did not let this device join the plan");
    }
    kith::capi::report_state(h, KITH_SYNC_IDLE, nullptr);
    if (plan_id) *plan_id = kith::capi::to_c(id.hex());
  });
}

kith_status kith_access_log_fetch(kith_home* home, const char* plan) noexcept {
  return guarded([&] {
    kith_home& h = handle(home);
    const ks::PlanId id = cli::resolve_plan(h.device.engine(), required(plan, "the plan"));
    auto session = kith::capi::open_session(h);
    const cli::PlanSync r =
        kith::capi::reporting_offline(h, &id, [&] { return session->fetch_access_log(id); });
    session->close();
    kith::capi::report_state(h, KITH_SYNC_IDLE, nullptr);
    cli::PlanSync errors_only = r;
    errors_only.problem_codes.clear();
    kith::capi::throw_if_refused(errors_only, "fetching the access log");
  });
}

}  // extern "C"
