// GroupCommitter: batches submitted while a transaction commits go into the next one, in
// submission order; every `done` runs exactly once, after its transaction; drain() finishes the
// queue and refuses what comes later; a failed transaction fails (and stores) every batch in it.
#include "group_commit.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sqlite_storage.hpp"
#include "support/gated_storage.hpp"
#include "support/temp_dir.hpp"

namespace kith::server {
namespace {

// A batch tagged with `id` (in its one fetch record) and carrying `ops` ops.
WriteBatch tagged(std::uint64_t id, std::size_t ops = 0, PlanId plan = {}) {
  WriteBatch b;
  b.plan = plan;
  FetchRecord fetch;
  fetch.at_ms = id;
  b.fetches = {fetch};
  b.ops.resize(ops);
  return b;
}

using kith::test::GatedStorage;

// What `done` reported for each tag.
class Outcomes {
 public:
  GroupCommitter::Done done_for(std::uint64_t id) {
    return [this, id](const StorageError* error) {
      std::lock_guard lock(mutex_);
      order_.push_back(id);
      ++calls_[id];
      if (error) errors_[id] = error->what();
    };
  }
  std::vector<std::uint64_t> order() {
    std::lock_guard lock(mutex_);
    return order_;
  }
  int calls(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    return calls_[id];
  }
  std::optional<std::string> error(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    auto it = errors_.find(id);
    if (it == errors_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::mutex mutex_;
  std::vector<std::uint64_t> order_;
  std::map<std::uint64_t, int> calls_;
  std::map<std::uint64_t, std::string> errors_;
};

struct CommitStats {
  std::mutex mutex;
  std::vector<std::pair<std::size_t, std::size_t>> commits;  // (batches, ops)
  GroupCommitter::OnCommit callback() {
    return [this](std::size_t batches, std::size_t ops, double seconds) {
      EXPECT_GE(seconds, 0.0);
      std::lock_guard lock(mutex);
      commits.emplace_back(batches, ops);
    };
  }
};

TEST(GroupCommit, CommitsInSubmissionOrderAndCallsEachDoneOnce) {
  GatedStorage storage;
  Outcomes outcomes;
  {
    GroupCommitter committer(storage, {});
    for (std::uint64_t id = 1; id <= 500; ++id) committer.submit(tagged(id), outcomes.done_for(id));
  }  // the destructor drains
  std::vector<std::uint64_t> committed;
  for (const auto& c : storage.commits()) committed.insert(committed.end(), c.begin(), c.end());
  std::vector<std::uint64_t> expected;
  for (std::uint64_t id = 1; id <= 500; ++id) expected.push_back(id);
  EXPECT_EQ(committed, expected);
  EXPECT_EQ(outcomes.order(), expected);
  for (std::uint64_t id = 1; id <= 500; ++id) {
    EXPECT_EQ(outcomes.calls(id), 1) << id;
    EXPECT_FALSE(outcomes.error(id)) << id;
  }
}

TEST(GroupCommit, BatchesSubmittedDuringACommitGoIntoTheNextOne) {
  GatedStorage storage;
  Outcomes outcomes;
  CommitStats stats;
  GroupCommitter committer(storage, {}, stats.callback());
  storage.close_gate();
  committer.submit(tagged(1, 2), outcomes.done_for(1));
  storage.wait_until_held();  // the writer took batch 1 alone and is committing it
  committer.submit(tagged(2, 1), outcomes.done_for(2));
  committer.submit(tagged(3, 0), outcomes.done_for(3));
  committer.submit(tagged(4, 4), outcomes.done_for(4));
  EXPECT_EQ(outcomes.calls(1), 0);  // not before its transaction commits
  storage.open_gate();
  committer.drain();
  EXPECT_EQ(storage.commits(), (std::vector<std::vector<std::uint64_t>>{{1}, {2, 3, 4}}));
  EXPECT_EQ(stats.commits, (std::vector<std::pair<std::size_t, std::size_t>>{{1, 2}, {3, 5}}));
  EXPECT_EQ(outcomes.order(), (std::vector<std::uint64_t>{1, 2, 3, 4}));
}

// kithd wraps each transaction's dones (Server::deliver_together), so that the messages they
// send reach each connection together: the wrapper runs once per transaction, around all of
// that transaction's dones and no other's.
TEST(GroupCommit, AroundDonesWrapsEachTransactionsDonesOnce) {
  GatedStorage storage;
  Outcomes outcomes;
  std::vector<std::vector<std::uint64_t>> wrapped;  // the dones run inside each wrapper call
  bool inside = false;
  GroupCommitter::Options options;
  options.around_dones = [&](const std::function<void()>& run_dones) {
    EXPECT_FALSE(inside);
    inside = true;
    const std::size_t before = outcomes.order().size();
    run_dones();
    const auto order = outcomes.order();
    wrapped.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(before), order.end());
    inside = false;
  };
  GroupCommitter committer(storage, options);
  storage.close_gate();
  committer.submit(tagged(1), outcomes.done_for(1));
  storage.wait_until_held();
  committer.submit(tagged(2), outcomes.done_for(2));
  committer.submit(tagged(3), outcomes.done_for(3));
  storage.open_gate();
  committer.drain();
  EXPECT_EQ(storage.commits(), (std::vector<std::vector<std::uint64_t>>{{1}, {2, 3}}));
  EXPECT_EQ(wrapped, (std::vector<std::vector<std::uint64_t>>{{1}, {2, 3}}));
}

TEST(GroupCommit, ADeferredBatchIsMadeWhenItsTransactionStartsInItsPlaceInTheQueue) {
  GatedStorage storage;
  Outcomes outcomes;
  GroupCommitter committer(storage, {});
  storage.close_gate();
  committer.submit(tagged(1), outcomes.done_for(1));
  storage.wait_until_held();
  // Queued while 1 commits; what it writes is decided when the next transaction takes it, so
  // the tag set after submitting it is the one committed.
  std::atomic<std::uint64_t> tag{0};
  std::atomic<int> made{0};
  committer.submit_deferred(
      [&] {
        made += 1;
        return tagged(tag.load());
      },
      outcomes.done_for(100));
  committer.submit(tagged(3), outcomes.done_for(3));
  tag = 2;
  EXPECT_EQ(made.load(), 0);
  storage.open_gate();
  committer.drain();
  EXPECT_EQ(made.load(), 1);
  EXPECT_EQ(storage.commits(), (std::vector<std::vector<std::uint64_t>>{{1}, {2, 3}}));
  EXPECT_EQ(outcomes.order(), (std::vector<std::uint64_t>{1, 100, 3}));
}

TEST(GroupCommit, TransactionsRespectTheBatchAndOpLimits) {
  GatedStorage storage;
  Outcomes outcomes;
  GroupCommitter committer(
      storage, {.max_batches_per_commit = 3, .max_ops_per_commit = 7, .around_dones = {}});
  storage.close_gate();
  committer.submit(tagged(1), outcomes.done_for(1));
  storage.wait_until_held();
  // 3 + 3 ops fit, a third 3 would pass 7; four empty batches pass the batch limit; a batch over
  // the op limit commits alone.
  const std::size_t ops[] = {3, 3, 3, 0, 0, 0, 0, 9, 1};
  for (std::uint64_t i = 0; i < std::size(ops); ++i) {
    committer.submit(tagged(i + 2, ops[i]), outcomes.done_for(i + 2));
  }
  storage.open_gate();
  committer.drain();
  EXPECT_EQ(storage.commits(),
            (std::vector<std::vector<std::uint64_t>>{{1}, {2, 3}, {4, 5, 6}, {7, 8}, {9}, {10}}));
}

TEST(GroupCommit, ManyThreadsGetEveryDoneOnceInOrderAndShareTransactions) {
  GatedStorage storage;
  storage.set_delay(std::chrono::microseconds(500));  // a commit's fsync
  Outcomes outcomes;
  CommitStats stats;
  constexpr std::uint64_t kThreads = 8;
  constexpr std::uint64_t kPerThread = 200;
  std::atomic<int> done_before_commit{0};
  {
    GroupCommitter committer(storage, {}, stats.callback());
    std::vector<std::thread> threads;
    for (std::uint64_t t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (std::uint64_t i = 0; i < kPerThread; ++i) {
          const std::uint64_t id = t * 1000 + i + 1;
          auto record = outcomes.done_for(id);
          committer.submit(tagged(id, 1), [&, id, record](const StorageError* error) {
            if (!storage.committed(id)) done_before_commit.fetch_add(1);
            record(error);
          });
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  EXPECT_EQ(done_before_commit.load(), 0);
  std::vector<std::uint64_t> committed;
  for (const auto& c : storage.commits()) committed.insert(committed.end(), c.begin(), c.end());
  ASSERT_EQ(committed.size(), kThreads * kPerThread);
  EXPECT_EQ(outcomes.order(), committed);  // dones in commit order
  // Each thread's batches commit in the order it submitted them.
  std::vector<std::uint64_t> last(kThreads, 0);
  for (std::uint64_t id : committed) {
    const std::uint64_t t = id / 1000;
    EXPECT_GT(id, last[t]);
    last[t] = id;
    EXPECT_EQ(outcomes.calls(id), 1);
    EXPECT_FALSE(outcomes.error(id));
  }
  std::size_t largest = 0;
  std::size_t batches = 0;
  std::size_t ops = 0;
  for (const auto& [b, o] : stats.commits) {
    largest = std::max(largest, b);
    batches += b;
    ops += o;
  }
  EXPECT_EQ(batches, kThreads * kPerThread);
  EXPECT_EQ(ops, kThreads * kPerThread);
  EXPECT_GT(largest, 1u) << "no transaction held more than one batch";
  EXPECT_LT(stats.commits.size(), kThreads * kPerThread);
}

TEST(GroupCommit, DrainCommitsWhatIsQueuedAndRefusesLaterSubmits) {
  GatedStorage storage;
  Outcomes outcomes;
  GroupCommitter committer(storage, {});
  storage.close_gate();
  committer.submit(tagged(1), outcomes.done_for(1));
  storage.wait_until_held();
  committer.submit(tagged(2), outcomes.done_for(2));
  committer.submit(tagged(3), outcomes.done_for(3));
  std::atomic<bool> drained{false};
  std::thread drainer([&] {
    committer.drain();
    drained = true;
  });
  // Once drain() has begun, a submit is refused at once, on the submitting thread. The writer is
  // held at the gate, so a `done` that ran inside submit() can only be a refusal; submits that
  // came before drain() began are queued and commit as usual.
  std::uint64_t refused = 0;
  for (std::uint64_t id = 100; id < 10000 && refused == 0; ++id) {
    committer.submit(tagged(id), outcomes.done_for(id));
    if (outcomes.calls(id) == 1) {
      refused = id;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  ASSERT_NE(refused, 0u);
  ASSERT_TRUE(outcomes.error(refused));
  EXPECT_NE(outcomes.error(refused)->find("shutting down"), std::string::npos)
      << *outcomes.error(refused);
  EXPECT_FALSE(drained.load());  // still waiting for the held commit
  storage.open_gate();
  drainer.join();
  std::vector<std::vector<std::uint64_t>> expected{{1}, {2, 3}};
  for (std::uint64_t id = 100; id < refused; ++id) expected[1].push_back(id);
  EXPECT_EQ(storage.commits(), expected);
  for (const auto& commit : expected) {
    for (std::uint64_t id : commit) EXPECT_FALSE(outcomes.error(id)) << id;
  }
  EXPECT_FALSE(storage.committed(refused));
  EXPECT_EQ(outcomes.calls(refused), 1);

  committer.drain();  // idempotent
  committer.submit(tagged(20000), outcomes.done_for(20000));
  EXPECT_EQ(outcomes.calls(20000), 1);
  EXPECT_TRUE(outcomes.error(20000));
}

TEST(GroupCommit, FailedTransactionReportsTheErrorToEveryBatchAndStoresNone) {
  kith::test::TempDir dir("kith-group-commit");
  SqliteStorage sqlite(dir / "kithd.db", {.synchronous = SqliteStorage::Options::Sync::kNormal});
  GatedStorage storage(&sqlite);
  const PlanId plan = PlanId::random();
  Outcomes outcomes;
  CommitStats stats;
  GroupCommitter committer(storage, {}, stats.callback());

  WriteBatch genesis = tagged(1, 0, plan);
  genesis.membership = {{0, Bytes{1}}};
  storage.close_gate();
  committer.submit(std::move(genesis), outcomes.done_for(1));
  storage.wait_until_held();
  // One transaction: a good batch, one that rewrites entry 0, another good one.
  WriteBatch good = tagged(2, 0, plan);
  good.membership = {{1, Bytes{2}}};
  WriteBatch conflicting = tagged(3, 0, plan);
  conflicting.membership = {{0, Bytes{9}}};
  WriteBatch other_plan = tagged(4, 0, PlanId::random());
  other_plan.membership = {{0, Bytes{1}}};
  committer.submit(std::move(good), outcomes.done_for(2));
  committer.submit(std::move(conflicting), outcomes.done_for(3));
  committer.submit(std::move(other_plan), outcomes.done_for(4));
  storage.open_gate();
  for (int i = 0; i < 5000 && outcomes.calls(4) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // The writer carries on after a failure.
  WriteBatch later = tagged(5, 0, plan);
  later.membership = {{1, Bytes{5}}};
  committer.submit(std::move(later), outcomes.done_for(5));
  committer.drain();

  EXPECT_FALSE(outcomes.error(1));
  for (std::uint64_t id : {2, 3, 4}) {
    ASSERT_TRUE(outcomes.error(id)) << id;
    EXPECT_NE(outcomes.error(id)->find("membership entry 0"), std::string::npos)
        << *outcomes.error(id);
    EXPECT_EQ(outcomes.calls(id), 1);
  }
  EXPECT_EQ(stats.commits.size(), 2u);  // genesis, then `later`: the failure is not counted
  EXPECT_FALSE(outcomes.error(5));
  // Nothing of 2, 3 or 4 was stored; 5 was.
  EXPECT_EQ(sqlite.membership_from(plan, 0, 10), (std::vector<Bytes>{Bytes{1}, Bytes{5}}));
  EXPECT_EQ(sqlite.fetch_log(plan, 0, 10).size(), 2u);
}

TEST(GroupCommit, AWithdrawnBatchIsNeverWrittenAndIsReportedInOrder) {
  GatedStorage storage;
  Outcomes outcomes;
  GroupCommitter committer(storage, {});
  std::atomic<bool> second_still_good{true};
  storage.close_gate();
  committer.submit(tagged(1), outcomes.done_for(1));
  storage.wait_until_held();
  committer.submit(tagged(2), outcomes.done_for(2), [&] { return second_still_good.load(); });
  committer.submit(tagged(3), outcomes.done_for(3), [] { return true; });
  second_still_good = false;  // as when the commit holding batch 1 fails
  storage.open_gate();
  committer.drain();

  EXPECT_EQ(storage.commits(), (std::vector<std::vector<std::uint64_t>>{{1}, {3}}));
  EXPECT_EQ(outcomes.order(), (std::vector<std::uint64_t>{1, 2, 3}));
  ASSERT_TRUE(outcomes.error(2));
  EXPECT_EQ(*outcomes.error(2), GroupCommitter::kSuperseded);
  EXPECT_FALSE(outcomes.error(3));
}

TEST(GroupCommit, DoneMaySubmitAndAThrowingCallbackDoesNotStopTheWriter) {
  GatedStorage storage;
  Outcomes outcomes;
  GroupCommitter committer(
      storage, {}, [](std::size_t, std::size_t, double) { throw std::runtime_error("metrics"); });
  committer.submit(tagged(1), [&](const StorageError*) {
    committer.submit(tagged(2), outcomes.done_for(2));
    throw std::runtime_error("a careless handler");
  });
  // Wait for the resubmitted batch without draining first: drain would refuse it if it came in
  // after drain began.
  for (int i = 0; i < 5000 && outcomes.calls(2) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  committer.drain();
  EXPECT_EQ(outcomes.calls(2), 1);
  EXPECT_FALSE(outcomes.error(2));
  EXPECT_EQ(storage.commits(), (std::vector<std::vector<std::uint64_t>>{{1}, {2}}));
}

}  // namespace
}  // namespace kith::server
