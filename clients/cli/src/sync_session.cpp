#include "kith/cli/sync_session.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "kith/cli/device.hpp"
#include "kith/cli/error.hpp"
#include "kith/cli/refs.hpp"

namespace kith::cli {
namespace {

using Clock = std::chrono::steady_clock;
using client::TransportError;
using std::chrono::milliseconds;

bool answers_request(const kith::v1::ServerMessage& m) {
  return m.has_catch_up_complete() || m.has_push_ack() || m.has_error() || m.has_access_log() ||
         m.has_invite_redeemed();
}

}  // namespace

client::Endpoint parse_server_url(const std::string& url) {
  try {
    return client::Endpoint::parse(url);
  } catch (const std::invalid_argument& e) {
    throw CliError(Exit::kUsage, "bad_server_url",
                   "the server '" + url + "' is not wss://HOST:PORT (" + e.what() + ")");
  }
}

std::chrono::milliseconds backoff_delay(unsigned attempt, std::chrono::milliseconds cap) {
  const unsigned shift = std::min(attempt, 20u);
  return std::min(milliseconds(1000 * (std::int64_t{1} << shift)), cap);
}

SyncSession::SyncSession(sync::SyncEngine& engine, ServerOptions options)
    : engine_(engine), options_(std::move(options)) {
  engine_.on_event([this](const sync::SyncEvent& e) { events_.push_back(e); });
}

SyncSession::~SyncSession() {
  engine_.on_event({});
  close();
}

void SyncSession::connect() {
  const client::Endpoint endpoint = parse_server_url(options_.url);
  client::TlsOptions tls;
  tls.ca_file = options_.ca_file;
  tls.timeout = options_.timeout;
  conn_.reset();
  conn_ = client::Connection::open(endpoint, tls);
  // The server registers a device it has not seen when it authenticates.
  conn_->authenticate(engine_.identity(), options_.client_name);
}

bool SyncSession::connected() const noexcept { return conn_ && conn_->is_open(); }

void SyncSession::close() noexcept {
  if (conn_) conn_->close();
  conn_.reset();
}

void SyncSession::send_all(std::vector<kith::v1::ClientMessage> msgs) {
  for (auto& m : msgs) {
    open_.push_back(m.request_id());
    conn_->send(m);
  }
}

PlanSync SyncSession::sync_plan(const sync::PlanId& plan, const ProgressFn& progress) {
  return converse(plan, engine_.subscribe(plan), progress);
}

PlanSync SyncSession::join(const sync::InviteCode& code, std::string_view title) {
  if (!conn_) throw std::logic_error("SyncSession::join before connect");
  return converse(code.plan(), {engine_.redeem(code, title)}, {});
}

PlanSync SyncSession::fetch_access_log(const sync::PlanId& plan) {
  return converse(plan, {engine_.fetch_access_log(plan)}, {});
}

PlanSync SyncSession::converse(const sync::PlanId& plan, std::vector<kith::v1::ClientMessage> first,
                               const ProgressFn& progress) {
  if (!conn_) throw std::logic_error("SyncSession used before connect");
  PlanSync r;
  r.plan = plan;
  open_.clear();
  events_.clear();
  auto drain_events = [&] {
    for (const auto& e : events_) {
      if (observer_) observer_(e);
      if (e.plan != plan) continue;
      switch (e.kind) {
        case sync::SyncEvent::Kind::kAcked:  // counted below: acks and echoes both report
          break;
        case sync::SyncEvent::Kind::kRecordChanged:
          ++r.received;
          break;
        case sync::SyncEvent::Kind::kProblem:
          r.problems.push_back(std::string(sync::sync_error_code_name(e.code)) + ": " + e.message);
          r.problem_codes.push_back(e.code);
          break;
        case sync::SyncEvent::Kind::kProgress:
          if (progress) progress(plan, e.server_seq, e.more);
          break;
        case sync::SyncEvent::Kind::kConflict:
          break;
      }
    }
    events_.clear();
  };
  // A plan being joined is held only once the join completes.
  auto waiting = [&] {
    for (const auto& [id, title] : engine_.plans()) {
      if (id == plan) return static_cast<std::uint64_t>(engine_.outbox_size(plan));
    }
    return std::uint64_t{0};
  };
  const std::uint64_t waiting_before = waiting();
  send_all(std::move(first));
  auto last_heard = Clock::now();
  while (!open_.empty()) {
    const auto silent = std::chrono::duration_cast<milliseconds>(Clock::now() - last_heard);
    if (silent >= options_.timeout) {
      throw TransportError(TransportError::Kind::kTimeout,
                           "the server at " + options_.url + " stopped answering");
    }
    auto m = conn_->receive(std::min(options_.timeout - silent, milliseconds(500)));
    if (!m) continue;
    last_heard = Clock::now();
    if (m->has_pong()) continue;
    const auto id = m->request_id();
    const bool ours = id != 0 && std::find(open_.begin(), open_.end(), id) != open_.end();
    if (m->has_error() && ours) {
      r.errors.push_back(
          {lower(kith::v1::ErrorCode_Name(m->error().code())), m->error().message()});
    }
    send_all(engine_.handle(*m));
    drain_events();
    if (answers_request(*m) && ours) std::erase(open_, id);
  }
  drain_events();
  r.waiting = waiting();
  r.sent = waiting_before > r.waiting ? waiting_before - r.waiting : 0;
  for (const auto& [id, title] : engine_.plans()) {
    if (id == plan) r.server_seq = engine_.cursor(plan);
  }
  return r;
}

std::vector<ServerPlan> SyncSession::list_server_plans() {
  if (!conn_) throw std::logic_error("SyncSession::list_server_plans before connect");
  std::vector<ServerPlan> out;
  std::string after;
  while (true) {
    kith::v1::ClientMessage ask;
    // Ids of the session's own requests lie above the engine's (as follow()'s pings do).
    ask.set_request_id(conn_->next_request_id() + (1ull << 40));
    ask.mutable_list_plans()->set_after_plan_id(after);
    conn_->send(ask);
    std::optional<kith::v1::ServerMessage> reply;
    const auto deadline = Clock::now() + options_.timeout;
    while (!reply) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      if (left <= milliseconds(0)) {
        throw TransportError(TransportError::Kind::kTimeout,
                             "the server at " + options_.url + " did not answer the plan list");
      }
      auto m = conn_->receive(left);
      if (m && m->request_id() == ask.request_id()) reply = std::move(m);
    }
    if (reply->has_error()) {
      throw TransportError(TransportError::Kind::kServerError,
                           "the server refused the plan list (" +
                               lower(kith::v1::ErrorCode_Name(reply->error().code())) +
                               "): " + reply->error().message(),
                           reply->error().code());
    }
    if (!reply->has_plan_list()) {
      throw TransportError(TransportError::Kind::kProtocol,
                           "the server answered the plan list with something else");
    }
    const auto& page = reply->plan_list();
    for (const auto& p : page.plans()) {
      // Strictly ascending after the page's start: a server that repeats itself cannot keep
      // this loop going.
      if (p.plan_id() <= after) {
        throw TransportError(TransportError::Kind::kProtocol,
                             "the server listed plans out of order");
      }
      after = p.plan_id();
      out.push_back({sync::PlanId::from_bytes(crypto::as_bytes(p.plan_id())), p.owner(),
                     sync::AccountId::from_bytes(crypto::as_bytes(p.owner_account_id())),
                     p.created_at_ms(), p.expires_at_ms(), p.expired()});
    }
    if (!page.more()) return out;
    if (page.plans().empty()) {
      throw TransportError(TransportError::Kind::kProtocol,
                           "the server said more plans follow but sent none");
    }
  }
}

void SyncSession::follow(const sync::PlanId& plan,
                         const std::function<void(const sync::SyncEvent&)>& on_event,
                         const std::function<bool()>& stop, milliseconds poll) {
  if (!conn_) throw std::logic_error("SyncSession::follow before connect");
  open_.clear();
  events_.clear();
  auto deliver = [&] {
    for (const auto& e : events_) {
      if (on_event) on_event(e);
    }
    events_.clear();
  };
  send_all(engine_.subscribe(plan));
  // A kith-level Ping now and then: it keeps idle-timeout middleboxes from closing a quiet
  // connection, and a dead connection shows up as a failed send rather than silence.
  constexpr milliseconds kPingEvery{20000};
  auto last_ping = Clock::now();
  while (!stop()) {
    if (Clock::now() - last_ping >= kPingEvery) {
      kith::v1::ClientMessage ping;
      ping.set_request_id(conn_->next_request_id() + (1ull << 40));
      ping.mutable_ping()->set_client_time_ms(now_ms());
      conn_->send(ping);
      last_ping = Clock::now();
    }
    auto m = conn_->receive(poll);
    if (!m) continue;
    if (m->has_pong()) continue;
    send_all(engine_.handle(*m));
    open_.clear();  // live: nothing waits for the answers
    deliver();
  }
}

}  // namespace kith::cli
