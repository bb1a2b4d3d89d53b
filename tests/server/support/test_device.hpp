// One person's device in a server test: real keys, a real LocalStore and SyncEngine, and a real
// TLS WebSocket connection to the kithd under test. `sync()` runs the conversation the CLI and
// the apps run: subscribe, apply what arrives, push what is queued, until every request is
// answered.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "kith/client/transport.hpp"
#include "kith/sync/engine.hpp"
#include "kith/sync/local_store.hpp"
#include "kith/sync/membership.hpp"
#include "kith/sync/chain.hpp"
#include "support/kithd_process.hpp"

namespace kith::test {

using namespace std::chrono_literals;

struct TestDevice {
  // A new account (or, with `identity`, another device of an existing account).
  TestDevice(const std::filesystem::path& dir, std::string name,
             const crypto::SigningKey* identity = nullptr);
  ~TestDevice();

  sync::AccountId account() const { return engine->identity().account(); }
  sync::DeviceId device() const { return engine->identity().device(); }
  const crypto::DeviceSecrets& secrets() const { return engine->identity().secrets; }

  // Opens and authenticates a connection (closing any earlier one).
  void connect(const KithdProcess& server);
  // Subscribes to `plan` and exchanges messages until the catch-up is complete and every
  // request has been answered. Returns the server errors received.
  std::vector<kith::v1::Error> sync(const sync::PlanId& plan,
                                    std::chrono::milliseconds timeout = 20s);
  // Redeems `code` and joins its plan as `title`: the whole conversation (redeem, join entry,
  // catch-up), until every request has been answered. Returns the server errors received;
  // refusals the engine reports are in `events`.
  std::vector<kith::v1::Error> join(const sync::InviteCode& code, std::string_view title = "plan",
                                    std::chrono::milliseconds timeout = 20s);
  // Sends `first`, then applies every answer and sends the engine's replies until each request
  // has its final answer.
  std::vector<kith::v1::Error> converse(std::vector<kith::v1::ClientMessage> first,
                                        std::chrono::milliseconds timeout = 20s);
  // Sends one request and returns the first answer carrying its request id (live deliveries
  // that arrive meanwhile are applied to the engine).
  kith::v1::ServerMessage request(kith::v1::ClientMessage m,
                                  std::chrono::milliseconds timeout = 10s);
  // Applies live messages until `until` holds or the time is up; returns whether it held.
  bool pump_until(const std::function<bool()>& until, std::chrono::milliseconds timeout = 10s);

  std::string name;
  std::filesystem::path dir;
  crypto::SectionKey storage_key = crypto::SectionKey::generate();
  std::unique_ptr<sync::LocalStore> store;
  std::unique_ptr<sync::SyncEngine> engine;
  std::unique_ptr<client::Connection> conn;
  std::vector<sync::SyncEvent> events;
  std::uint64_t next_request = 1u << 20;  // ids of hand-made requests, apart from the engine's
};

}  // namespace kith::test

namespace kith::test {

// Hand-made protocol pieces for adversarial tests: ops, heads and membership entries signed
// with a device's real keys, bypassing the engine.
struct Forge {
  sync::PlanId plan;
  const crypto::DeviceSecrets* secrets;
  std::uint64_t membership_index = 1;

  sync::DeviceId author() const;
  // An op in `section` at `seq` after `prev`, sealed under a random key (the server cannot read
  // it either way).
  sync::Op op(std::string_view section, std::uint64_t seq, const sync::OpHash& prev,
              std::uint64_t epoch = 1, sync::OpId id = sync::OpId::random()) const;
  kith::v1::SignedHead head(const sync::Op& op) const;
  // PushOps with `ops` and a head over the last one.
  kith::v1::ClientMessage push(const std::vector<sync::Op>& ops, bool with_head = true) const;
};

// The owner invites `member` with `grants`; both push their entries, the owner syncs, wraps the
// keys of the granted sections for the member (a key rotation per section) and syncs again; the
// member follows the plan and syncs. Fails the test on any error.
void add_member(TestDevice& owner, TestDevice& member, const sync::PlanId& plan,
                const std::vector<sync::GrantSpec>& grants);

// Subscribes `device`'s connection to `plan` from `cursor` without its engine and collects the
// catch-up.
struct RawCatchUp {
  std::vector<kith::v1::DeliveredOp> ops;
  std::vector<std::string> entries;
  std::vector<std::string> envelopes;
  std::optional<kith::v1::CatchUpComplete> complete;
  std::optional<kith::v1::Error> error;
};
// `fill` may add to the Subscribe (a recovery proof, say).
RawCatchUp raw_catch_up(TestDevice& device, const sync::PlanId& plan, std::uint64_t cursor = 0,
                        const std::function<void(kith::v1::Subscribe&)>& fill = {});

kith::v1::ClientMessage message_with(std::uint64_t request_id,
                                     const std::function<void(kith::v1::ClientMessage&)>& fill);

}  // namespace kith::test
