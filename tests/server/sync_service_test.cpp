// SyncService without sockets, over real SQLite: what happens when a commit fails, and how the
// in-memory plan cache drops and reloads plans.
#include "sync_service.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <vector>

#include "group_commit.hpp"
#include "metrics.hpp"
#include "sqlite_storage.hpp"
#include "support/gated_storage.hpp"
#include "support/temp_dir.hpp"
#include "support/test_device.hpp"

namespace kith::server {
namespace {

using namespace std::chrono_literals;
using kith::test::GatedStorage;

// A connected device as the service sees it: keeps what is delivered to it.
class RecordingPeer : public Peer {
 public:
  explicit RecordingPeer(Who who) : who_(std::move(who)) {}
  void deliver_encoded(Encoded bytes) override {
    kith::v1::ServerMessage m;
    EXPECT_TRUE(m.ParseFromString(*bytes));
    {
      std::lock_guard lock(mu_);
      got_.push_back(std::move(m));
      encoded_.push_back(std::move(bytes));
    }
    cv_.notify_all();
  }
  const Who& who() const noexcept override { return who_; }

  // The first message `match` accepts, waiting up to 10 s for it.
  std::optional<kith::v1::ServerMessage> wait_for(
      const std::function<bool(const kith::v1::ServerMessage&)>& match) {
    std::unique_lock lock(mu_);
    std::optional<kith::v1::ServerMessage> out;
    cv_.wait_for(lock, 10s, [&] {
      for (const auto& m : got_) {
        if (match(m)) {
          out = m;
          return true;
        }
      }
      return false;
    });
    return out;
  }
  // The bytes of every live batch received, as delivered.
  std::vector<Encoded> ops_batches() {
    std::lock_guard lock(mu_);
    std::vector<Encoded> out;
    for (std::size_t i = 0; i < got_.size(); ++i) {
      if (got_[i].has_ops_batch()) out.push_back(encoded_[i]);
    }
    return out;
  }
  // The answer to `request_id`; fails the test if there is none within 10 s.
  kith::v1::ServerMessage answer(std::uint64_t request_id) {
    auto reply = wait_for([&](const auto& m) { return m.request_id() == request_id; });
    EXPECT_TRUE(reply.has_value()) << "no answer to request " << request_id;
    return reply.value_or(kith::v1::ServerMessage{});
  }

 private:
  Who who_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<kith::v1::ServerMessage> got_;
  std::vector<Encoded> encoded_;  // got_[i] as delivered
};

// A service over SQLite (behind a GatedStorage) and owners whose plans are on it.
class SyncServiceTest : public ::testing::Test {
 protected:
  SyncServiceTest() { reset_service({}); }
  ~SyncServiceTest() override { committer->drain(); }

  void reset_service(ServiceOptions options) {
    if (committer) committer->drain();
    service.reset();
    committer = std::make_unique<GroupCommitter>(storage, GroupCommitter::Options{});
    options.now_ms = [] { return std::uint64_t{1'800'000'000'000}; };
    service = std::make_unique<SyncService>(storage, *committer, metrics, options);
  }

  static ServiceOptions cache_of(std::size_t plans) {
    ServiceOptions o;
    o.max_cached_plans = plans;
    return o;
  }
  // Returns once every commit queued so far is done and its callbacks released: a plan view
  // they held is free again.
  void commits_settled() {
    std::promise<void> done;
    committer->submit(WriteBatch{}, [&](const StorageError*) { done.set_value(); });
    done.get_future().wait();
  }

  struct Owner {
    std::unique_ptr<kith::test::TestDevice> device;
    std::shared_ptr<RecordingPeer> peer;
    PlanId plan;
    kith::test::Forge forge() const {
      return kith::test::Forge{plan, &device->secrets(), device->engine->membership(plan).size()};
    }
  };
  // A new owner whose new plan's first membership entries are stored.
  Owner owner_with_plan(const std::string& name) {
    Owner o;
    o.device = std::make_unique<kith::test::TestDevice>(dir.path(), name);
    o.plan = o.device->engine->create_plan(name + "'s support plan");
    o.peer = peer_for(*o.device);
    for (const auto& m : o.device->engine->pushes(o.plan, false)) {
      EXPECT_TRUE(m.has_push_membership());
      service->push_membership(o.peer, m.request_id(), m.push_membership());
      EXPECT_TRUE(o.peer->answer(m.request_id()).has_push_ack());
    }
    return o;
  }
  static std::shared_ptr<RecordingPeer> peer_for(const kith::test::TestDevice& d) {
    const auto box = d.secrets().device.encryption.public_key().bytes();
    return std::make_shared<RecordingPeer>(
        Who{d.account(), d.device(), Bytes(box.begin(), box.end())});
  }
  std::vector<StoredOp> stored(const PlanId& plan, const char* section) {
    return sqlite.ops_after(plan, 0, 1000, {Section::parse(section)}, 1000);
  }

  kith::test::TempDir dir{"kith-service"};
  // Op ids are merged into op_ids every few ops, so that every test here also runs across
  // merges.
  SqliteStorage sqlite{
      dir / "kithd.db",
      {.synchronous = SqliteStorage::Options::Sync::kNormal, .merge_op_ids_at = 4}};
  GatedStorage storage{&sqlite};
  Metrics metrics;
  std::unique_ptr<GroupCommitter> committer;
  std::unique_ptr<SyncService> service;
};

// Writes queued behind a failed commit were given sequence numbers and chain links that assumed
// it would be stored, so they are withdrawn rather than written (a gap in the plan's sequence,
// or an op whose chain link points at nothing, would be stored for good otherwise). The pusher
// gets INTERNAL for each, and sending them again works.
TEST_F(SyncServiceTest, PushesQueuedBehindAFailedCommitAreWithdrawnNotStored) {
  Owner mary = owner_with_plan("mary");
  kith::test::Forge forge = mary.forge();
  const sync::Op first = forge.op("notes", 1, sync::OpHash{});
  const sync::Op second = forge.op("notes", 2, first.hash());
  storage.close_gate();
  service->push_ops(mary.peer, 10, forge.push({first}).push_ops());
  storage.wait_until_held();  // the commit holding `first` has begun
  service->push_ops(mary.peer, 11, forge.push({second}).push_ops());  // queued behind, seq 2
  storage.fail_next_commit("disk I/O error");
  storage.open_gate();

  for (std::uint64_t rid : {10, 11}) {
    auto reply = mary.peer->answer(rid);
    ASSERT_TRUE(reply.has_error()) << rid << ": " << reply.DebugString();
    EXPECT_EQ(reply.error().code(), kith::v1::INTERNAL);
    EXPECT_NE(reply.error().message().find("nothing was stored"), std::string::npos);
  }
  EXPECT_TRUE(stored(mary.plan, "notes").empty());

  // The device sends both again: stored once each, in order, from sequence number 1.
  service->push_ops(mary.peer, 12, forge.push({first, second}).push_ops());
  auto ack = mary.peer->answer(12);
  ASSERT_TRUE(ack.has_push_ack()) << ack.DebugString();
  auto ops = stored(mary.plan, "notes");
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[0].seq, 1u);
  EXPECT_EQ(ops[0].op_id, sync::OpHeader::parse(first.header).op_id);
  EXPECT_EQ(ops[1].seq, 2u);
  EXPECT_EQ(ops[1].op_id, sync::OpHeader::parse(second.header).op_id);
}

// Plans nobody is using are dropped from memory once the cache is full, and come back from
// storage as they were: chains continue where they stopped.
TEST_F(SyncServiceTest, IdlePlansAreDroppedAndReloadedIntact) {
  reset_service(cache_of(2));
  Owner mary = owner_with_plan("mary");
  kith::test::Forge forge = mary.forge();
  const sync::Op first = forge.op("notes", 1, sync::OpHash{});
  service->push_ops(mary.peer, 10, forge.push({first}).push_ops());
  ASSERT_TRUE(mary.peer->answer(10).has_push_ack());

  std::vector<Owner> others;
  for (const char* name : {"ann", "bob", "cat"}) others.push_back(owner_with_plan(name));
  EXPECT_LE(service->cached_plans(), 2u);  // 4 plans used, none in use now

  const sync::Op second = forge.op("notes", 2, first.hash());
  service->push_ops(mary.peer, 11, forge.push({second}).push_ops());
  auto ack = mary.peer->answer(11);
  ASSERT_TRUE(ack.has_push_ack()) << ack.DebugString();
  auto ops = stored(mary.plan, "notes");
  ASSERT_EQ(ops.size(), 2u);
  EXPECT_EQ(ops[1].seq, 2u);
  // A chain gap is still caught after the reload: the reloaded tip is `second`.
  for (const char* name : {"dan", "eve"}) others.push_back(owner_with_plan(name));
  try {
    service->push_ops(mary.peer, 12, forge.push({forge.op("notes", 4, second.hash())}).push_ops());
    ADD_FAILURE() << "a chain gap after a reload was accepted";
  } catch (const Refusal& r) {
    EXPECT_EQ(r.code(), kith::v1::CHAIN_GAP) << r.what();
  }
}

// The cache is bounded by memory too: once the cached plans' op-id sets take
// max_cached_op_id_bytes, loading another plan drops the idle ones, however few they are. The
// dropped plan comes back from storage with its ids: a repeated op is acknowledged with its
// first sequence number, not stored again.
TEST_F(SyncServiceTest, IdlePlansAreDroppedWhenTheirOpIdsFillTheMemoryBudget) {
  for (const bool small_budget : {false, true}) {
    SCOPED_TRACE(small_budget ? "1 KiB budget" : "default budget");
    ServiceOptions options = cache_of(100);
    if (small_budget) options.max_cached_op_id_bytes = 1024;
    reset_service(options);
    Owner mary = owner_with_plan(small_budget ? "mary" : "maud");
    kith::test::Forge forge = mary.forge();
    std::vector<sync::Op> ops;
    for (std::uint64_t n = 1; n <= 40; ++n) {  // 40 ids: a table of 128 slots, 1 KiB
      ops.push_back(forge.op("notes", n, n == 1 ? sync::OpHash{} : ops.back().hash()));
      service->push_ops(mary.peer, n, forge.push({ops.back()}).push_ops());
      ASSERT_TRUE(mary.peer->answer(n).has_push_ack());
    }
    EXPECT_EQ(metrics.op_id_bytes_cached.load(), 1024);
    commits_settled();

    Owner ann = owner_with_plan(small_budget ? "ann" : "abe");  // loads a second plan
    EXPECT_EQ(service->cached_plans(), small_budget ? 1u : 2u);
    EXPECT_EQ(metrics.op_id_bytes_cached.load(), small_budget ? 0 : 1024);

    service->push_ops(mary.peer, 100, forge.push(ops).push_ops());
    auto again = mary.peer->answer(100);
    ASSERT_TRUE(again.has_push_ack()) << again.DebugString();
    ASSERT_EQ(again.push_ack().acked_size(), 40);
    for (int i = 0; i < 40; ++i) EXPECT_EQ(again.push_ack().acked(i).server_seq(), i + 1u);
    EXPECT_EQ(stored(mary.plan, "notes").size(), 40u);
    EXPECT_EQ(metrics.op_id_bytes_cached.load(), 1024);  // mary's set, back in memory
  }
}

// A plan someone is subscribed to stays in memory however full the cache is: its subscribers
// live there, and a reloaded copy would not know them.
TEST_F(SyncServiceTest, SubscribedPlansStayAndKeepGettingLiveOps) {
  reset_service(cache_of(1));
  Owner mary = owner_with_plan("mary");
  // Mary's second device listens (the server sends a device nothing it pushed itself).
  kith::test::TestDevice phone(dir.path(), "mary-phone", &mary.device->secrets().identity);
  mary.device->engine->add_device(mary.plan, phone.engine->identity().certificate);
  for (const auto& m : mary.device->engine->pushes(mary.plan, false)) {
    if (!m.has_push_membership()) continue;
    service->push_membership(mary.peer, m.request_id(), m.push_membership());
    ASSERT_TRUE(mary.peer->answer(m.request_id()).has_push_ack());
  }
  auto listener = peer_for(phone);
  kith::v1::Subscribe sub;
  sub.set_plan_id(std::string(mary.plan.bytes().begin(), mary.plan.bytes().end()));
  auto catch_up = service->subscribe(listener, 20, sub);
  while (catch_up->next()) {
  }
  catch_up.reset();
  std::vector<Owner> others;
  for (const char* name : {"ann", "bob", "cat"}) others.push_back(owner_with_plan(name));

  kith::test::Forge forge = mary.forge();
  service->push_ops(mary.peer, 21, forge.push({forge.op("notes", 1, sync::OpHash{})}).push_ops());
  ASSERT_TRUE(mary.peer->answer(21).has_push_ack());
  EXPECT_TRUE(listener->wait_for([](const kith::v1::ServerMessage& m) {
    return m.has_ops_batch() && m.ops_batch().ops_size() == 1;
  })) << "the subscriber got no live op";

  service->disconnected(*listener);
  for (const char* name : {"dan", "eve"}) others.push_back(owner_with_plan(name));
  EXPECT_LE(service->cached_plans(), 2u);  // mary's plan could go once nobody listened
}

// A live batch is built and serialized once for every device that may read the same part of
// the push: Mary's phone and tablet are handed the very same bytes.
TEST_F(SyncServiceTest, DevicesWithTheSameViewShareOneSerializedBatch) {
  Owner mary = owner_with_plan("mary");
  kith::test::TestDevice phone(dir.path(), "mary-phone", &mary.device->secrets().identity);
  kith::test::TestDevice tablet(dir.path(), "mary-tablet", &mary.device->secrets().identity);
  mary.device->engine->add_device(mary.plan, phone.engine->identity().certificate);
  mary.device->engine->add_device(mary.plan, tablet.engine->identity().certificate);
  for (const auto& m : mary.device->engine->pushes(mary.plan, false)) {
    if (!m.has_push_membership()) continue;
    service->push_membership(mary.peer, m.request_id(), m.push_membership());
    ASSERT_TRUE(mary.peer->answer(m.request_id()).has_push_ack());
  }
  std::vector<std::shared_ptr<RecordingPeer>> listeners{peer_for(phone), peer_for(tablet)};
  kith::v1::Subscribe sub;
  sub.set_plan_id(std::string(mary.plan.bytes().begin(), mary.plan.bytes().end()));
  for (auto& listener : listeners) {
    auto catch_up = service->subscribe(listener, 20, sub);
    while (catch_up->next()) {
    }
  }
  kith::test::Forge forge = mary.forge();
  service->push_ops(mary.peer, 21, forge.push({forge.op("notes", 1, sync::OpHash{})}).push_ops());
  ASSERT_TRUE(mary.peer->answer(21).has_push_ack());
  for (auto& listener : listeners) {
    ASSERT_TRUE(listener->wait_for([](const kith::v1::ServerMessage& m) {
      return m.has_ops_batch() && m.ops_batch().ops_size() == 1;
    })) << "a subscriber got no live op";
  }
  auto phone_got = listeners[0]->ops_batches();
  auto tablet_got = listeners[1]->ops_batches();
  ASSERT_EQ(phone_got.size(), 1u);
  ASSERT_EQ(tablet_got.size(), 1u);
  EXPECT_EQ(phone_got[0].get(), tablet_got[0].get());
  EXPECT_TRUE(mary.peer->ops_batches().empty());  // nothing back to the device that pushed
}

// A pushed op whose id the plan does not hold is accepted without a database look-up (the
// plan's op ids are in memory, loaded with it); a repeat is looked up, acknowledged with its
// sequence number and not stored again, also after the plan was dropped and reloaded.
TEST_F(SyncServiceTest, NewOpIdsAreCheckedInMemoryAndRepeatsInStorage) {
  reset_service(cache_of(1));
  Owner mary = owner_with_plan("mary");
  kith::test::Forge forge = mary.forge();
  const sync::Op first = forge.op("notes", 1, sync::OpHash{});
  const sync::Op second = forge.op("notes", 2, first.hash());
  const std::size_t before = storage.op_lookups();
  service->push_ops(mary.peer, 10, forge.push({first}).push_ops());
  ASSERT_TRUE(mary.peer->answer(10).has_push_ack());
  service->push_ops(mary.peer, 11, forge.push({second}).push_ops());
  ASSERT_TRUE(mary.peer->answer(11).has_push_ack());
  EXPECT_EQ(storage.op_lookups(), before);

  std::vector<Owner> others;
  for (const char* name : {"ann", "bob"}) others.push_back(owner_with_plan(name));
  service->push_ops(mary.peer, 12, forge.push({first, second}).push_ops());  // reloaded
  auto again = mary.peer->answer(12);
  ASSERT_TRUE(again.has_push_ack()) << again.DebugString();
  ASSERT_EQ(again.push_ack().acked_size(), 2);
  EXPECT_EQ(again.push_ack().acked(0).server_seq(), 1u);
  EXPECT_EQ(again.push_ack().acked(1).server_seq(), 2u);
  EXPECT_EQ(storage.op_lookups(), before + 2);
  EXPECT_EQ(stored(mary.plan, "notes").size(), 2u);
}

// Some of a plan's op ids are merged into op_ids, the last ones wait unmerged: a device
// that sends every op again (it never saw the acks) gets each op's first sequence number back,
// from the plan in memory and from the plan reloaded, and nothing is stored twice.
TEST_F(SyncServiceTest, OpsSentAgainAreAcknowledgedOnceWhetherTheirIdsWereMergedOrNot) {
  reset_service(cache_of(1));
  Owner mary = owner_with_plan("mary");
  kith::test::Forge forge = mary.forge();
  std::vector<sync::Op> ops;
  for (std::uint64_t n = 1; n <= 10; ++n) {
    ops.push_back(forge.op("notes", n, n == 1 ? sync::OpHash{} : ops.back().hash()));
    service->push_ops(mary.peer, n, forge.push({ops.back()}).push_ops());
    ASSERT_TRUE(mary.peer->answer(n).has_push_ack());
  }
  EXPECT_LT(sqlite.unmerged_op_ids(), 4u);  // merged at 4 and 8: two wait
  EXPECT_GT(sqlite.unmerged_op_ids(), 0u);

  auto expect_first_seqs = [&](std::uint64_t request_id) {
    service->push_ops(mary.peer, request_id, forge.push(ops).push_ops());
    auto again = mary.peer->answer(request_id);
    ASSERT_TRUE(again.has_push_ack()) << again.DebugString();
    ASSERT_EQ(again.push_ack().acked_size(), 10);
    for (int i = 0; i < 10; ++i) {
      EXPECT_EQ(again.push_ack().acked(i).server_seq(), static_cast<std::uint64_t>(i + 1)) << i;
    }
    EXPECT_EQ(stored(mary.plan, "notes").size(), 10u);
  };
  expect_first_seqs(20);
  std::vector<Owner> others;
  for (const char* name : {"ann", "bob"}) others.push_back(owner_with_plan(name));
  expect_first_seqs(21);  // reloaded: its op ids read from both tables

  // And the next op is new, not mistaken for a repeat.
  const sync::Op next = forge.op("notes", 11, ops.back().hash());
  service->push_ops(mary.peer, 22, forge.push({next}).push_ops());
  auto ack = mary.peer->answer(22);
  ASSERT_TRUE(ack.has_push_ack()) << ack.DebugString();
  EXPECT_EQ(ack.push_ack().acked(0).server_seq(), 11u);
}

}  // namespace
}  // namespace kith::server
