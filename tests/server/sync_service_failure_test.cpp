// SyncService when a commit fails: writes queued behind the failed one were given sequence
// numbers and chain links that assumed it would be stored, so they are withdrawn rather than
// written (a gap in a plan's sequence, or an op whose chain link points at nothing, would be
// stored for good otherwise). The pusher gets INTERNAL for each, and sending them again works.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "group_commit.hpp"
#include "metrics.hpp"
#include "sqlite_storage.hpp"
#include "support/gated_storage.hpp"
#include "support/temp_dir.hpp"
#include "support/test_device.hpp"
#include "sync_service.hpp"

namespace kith::server {
namespace {

using namespace std::chrono_literals;
using kith::test::GatedStorage;

// A connected device as the service sees it: keeps what is delivered to it.
class RecordingPeer : public Peer {
 public:
  explicit RecordingPeer(Who who) : who_(std::move(who)) {}
  void deliver(kith::v1::ServerMessage m) override {
    {
      std::lock_guard lock(mu_);
      got_.push_back(std::move(m));
    }
    cv_.notify_all();
  }
  const Who& who() const noexcept override { return who_; }

  // The answer to `request_id`; fails the test after 10 s.
  kith::v1::ServerMessage answer(std::uint64_t request_id) {
    std::unique_lock lock(mu_);
    kith::v1::ServerMessage out;
    const bool found = cv_.wait_for(lock, 10s, [&] {
      for (const auto& m : got_) {
        if (m.request_id() == request_id) {
          out = m;
          return true;
        }
      }
      return false;
    });
    EXPECT_TRUE(found) << "no answer to request " << request_id;
    return out;
  }

 private:
  Who who_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<kith::v1::ServerMessage> got_;
};

TEST(SyncServiceFailure, PushesQueuedBehindAFailedCommitAreWithdrawnNotStored) {
  kith::test::TempDir dir("kith-service-failure");
  SqliteStorage sqlite(dir / "kithd.db", {.synchronous = SqliteStorage::Options::Sync::kNormal});
  GatedStorage storage(&sqlite);
  Metrics metrics;
  GroupCommitter committer(storage, {});
  ServiceOptions options;
  options.now_ms = [] { return std::uint64_t{1'800'000'000'000}; };
  SyncService service(storage, committer, metrics, options);

  kith::test::TestDevice owner(dir.path(), "owner");
  const PlanId plan = owner.engine->create_plan("Mary's support plan");
  const auto& keys = owner.secrets().device;
  auto peer = std::make_shared<RecordingPeer>(
      Who{owner.account(), owner.device(),
          Bytes(keys.encryption.public_key().bytes().begin(),
                keys.encryption.public_key().bytes().end())});
  for (const auto& m : owner.engine->pushes(plan, false)) {
    ASSERT_TRUE(m.has_push_membership());
    service.push_membership(peer, m.request_id(), m.push_membership());
    ASSERT_TRUE(peer->answer(m.request_id()).has_push_ack());
  }

  kith::test::Forge forge{plan, &owner.secrets(), owner.engine->membership(plan).size()};
  const sync::Op first = forge.op("notes", 1, sync::OpHash{});
  const sync::Op second = forge.op("notes", 2, first.hash());
  storage.close_gate();
  service.push_ops(peer, 10, forge.push({first}).push_ops());
  storage.wait_until_held();  // the commit holding `first` has begun
  service.push_ops(peer, 11, forge.push({second}).push_ops());  // queued behind it, seq 2
  storage.fail_next_commit("disk I/O error");
  storage.open_gate();

  for (std::uint64_t rid : {10, 11}) {
    auto reply = peer->answer(rid);
    ASSERT_TRUE(reply.has_error()) << rid << ": " << reply.DebugString();
    EXPECT_EQ(reply.error().code(), kith::v1::INTERNAL);
    EXPECT_NE(reply.error().message().find("nothing was stored"), std::string::npos);
  }
  const std::vector<Section> notes{Section::parse("notes")};
  EXPECT_TRUE(sqlite.ops_after(plan, 0, 100, notes, 100).empty());

  // The device sends both again: stored once each, in order, from sequence number 1.
  service.push_ops(peer, 12, forge.push({first, second}).push_ops());
  auto ack = peer->answer(12);
  ASSERT_TRUE(ack.has_push_ack()) << ack.DebugString();
  auto stored = sqlite.ops_after(plan, 0, 100, notes, 100);
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].seq, 1u);
  EXPECT_EQ(stored[0].op_id, sync::OpHeader::parse(first.header).op_id);
  EXPECT_EQ(stored[1].seq, 2u);
  EXPECT_EQ(stored[1].op_id, sync::OpHeader::parse(second.header).op_id);
  committer.drain();
}

}  // namespace
}  // namespace kith::server
