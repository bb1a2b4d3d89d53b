// One conversation with kithd for the CLI: connect (TLS verified against --ca or the system
// store), authenticate with the device key (which also registers the device on first contact),
// then either sync plans once (subscribe, catch up, push what is queued, wait for the acks) or
// stay connected and hand live changes to a callback until asked to stop.
//
//   SyncSession s(device.engine(), {.url = "wss://127.0.0.1:8443", .ca_file = ca});
//   s.connect();
//   PlanSync r = s.sync_plan(plan, on_progress);
//
// Every wait has a deadline (ServerOptions::timeout without a word from the server), so nothing
// hangs. Transport failures surface as client::TransportError; a server Error answering one of
// our requests is collected in PlanSync::errors. Not thread-safe. The engine's event sink is
// the session's while it lives.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kith/client/transport.hpp"
#include "kith/sync/engine.hpp"

namespace kith::cli {

struct ServerOptions {
  std::string url;                               // wss://HOST:PORT[/path]
  std::optional<std::filesystem::path> ca_file;  // none: the system's trust store
  std::chrono::milliseconds timeout{15000};      // connecting, and silence while waiting
  std::string client_name = "kith-cli 0.1";      // sent in Hello (the server logs it)
};

// Throws CliError(bad_server_url) for a URL Endpoint::parse refuses.
client::Endpoint parse_server_url(const std::string& url);

struct ServerProblem {
  std::string code;  // the server's ErrorCode, lower case ("not_member")
  std::string message;
};

struct PlanSync {
  sync::PlanId plan;
  std::uint64_t sent = 0;      // queued ops the server has now acknowledged
  std::uint64_t received = 0;  // records changed by what arrived
  std::uint64_t waiting = 0;   // ops still waiting to upload afterwards
  std::uint64_t server_seq = 0;
  std::vector<ServerProblem> errors;               // server Errors answering our requests
  std::vector<std::string> problems;               // what the engine refused or reported (kProblem)
  std::vector<sync::SyncErrorCode> problem_codes;  // the same, their codes
};

// A plan the server lists for this account (ListPlans, docs/PROTOCOL.md "Plan discovery"): only
// what the server sees, never a title.
struct ServerPlan {
  sync::PlanId plan;
  bool owner = false;
  sync::AccountId owner_account;
  std::uint64_t created_at_ms = 0;  // by the owner's device clock
  std::uint64_t expires_at_ms = 0;  // when the account's last grant ends; 0: never
  bool expired = false;             // by the server's clock
};

// The engine's progress as batches arrive: the server sequence reached, and whether more follow.
using ProgressFn = std::function<void(const sync::PlanId&, std::uint64_t server_seq, bool more)>;

class SyncSession {
 public:
  SyncSession(sync::SyncEngine& engine, ServerOptions options);
  ~SyncSession();

  // Opens and authenticates. Throws client::TransportError (and CliError(bad_server_url)).
  void connect();
  bool connected() const noexcept;

  // Push and pull `plan` once. Throws client::TransportError if the connection fails.
  PlanSync sync_plan(const sync::PlanId& plan, const ProgressFn& progress = {});
  // Redeems an invite code and joins its plan as `title`: the whole conversation (redeem, the
  // join entry, the first catch-up). A refusal is in `problems` (and the server's Error, if it
  // sent one, in `errors`); the plan is then not held. Throws as sync_plan.
  PlanSync join(const sync::InviteCode& code, std::string_view title);
  // Fetches the plan's access log (every page) into the engine (SyncEngine::access_log). Only
  // the owner may: others get a FORBIDDEN in `errors`. Throws as sync_plan.
  PlanSync fetch_access_log(const sync::PlanId& plan);

  // Every plan the server lists for this account (all pages of ListPlans), in plan-id order.
  // Changes nothing here. Throws client::TransportError: kServerError for a refusal, kProtocol
  // for an answer out of order, and the connection's errors.
  std::vector<ServerPlan> list_server_plans();

  // Subscribes to `plan` (which also uploads what waits), then applies live messages, calling
  // `on_event` for each engine event, until `stop()` is true (asked after each message and at
  // least every `poll`). Returns normally when stopped; throws client::TransportError when the
  // connection is lost (the caller reconnects).
  void follow(const sync::PlanId& plan, const std::function<void(const sync::SyncEvent&)>& on_event,
              const std::function<bool()>& stop,
              std::chrono::milliseconds poll = std::chrono::milliseconds(200));

  void close() noexcept;

  // Also hands every engine event to `observer` while sync_plan, join or fetch_access_log runs,
  // synchronously, after the message that caused it is applied (libkith's callbacks).
  void observe(std::function<void(const sync::SyncEvent&)> observer) {
    observer_ = std::move(observer);
  }

 private:
  void send_all(std::vector<kith::v1::ClientMessage> msgs);
  // Sends `first`, then answers the server until every request (and those the answers led to)
  // is answered, collecting what happened to `plan`.
  PlanSync converse(const sync::PlanId& plan, std::vector<kith::v1::ClientMessage> first,
                    const ProgressFn& progress);

  sync::SyncEngine& engine_;
  ServerOptions options_;
  std::unique_ptr<client::Connection> conn_;
  std::vector<sync::SyncEvent> events_;
  std::function<void(const sync::SyncEvent&)> observer_;
  std::vector<std::uint64_t> open_;  // request ids sent and not yet answered
};

// The delay before reconnect attempt `attempt` (0-based): 1 s, 2 s, 4 s, ... capped at `cap`.
std::chrono::milliseconds backoff_delay(unsigned attempt,
                                        std::chrono::milliseconds cap = std::chrono::seconds(30));

}  // namespace kith::cli
