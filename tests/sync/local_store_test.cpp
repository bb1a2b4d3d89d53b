// LocalStore's API promises: idempotent ops, the ordered outbox, cursors, transactions and
// their rollback, membership entries, envelopes (received and outgoing), section keys, and
// removing a plan. What is on disk and what survives a crash: local_store_at_rest_test.cpp;
// older, newer and foreign files: local_store_migration_test.cpp.
#include "kith/sync/local_store.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "kith/crypto/aead.hpp"
#include "kith/crypto/bytes.hpp"
#include "kith/sync/error.hpp"
#include "local_store_fixtures.hpp"

namespace kith::sync::store_test {
namespace {

class LocalStoreTest : public ::testing::Test {
 protected:
  LocalStoreTest() : key_(crypto::SectionKey::generate()), plan_(PlanId::random()) {
    open();
    store_->put_plan(plan_, "plan");
  }
  void open() { store_.emplace(path(), key_); }
  void reopen() {
    store_.reset();
    open();
  }
  fs::path path() const { return dir_ / "kith.db"; }
  LocalStore& store() { return *store_; }

  TempDir dir_;
  crypto::SectionKey key_;
  PlanId plan_;
  std::optional<LocalStore> store_;
};

TEST_F(LocalStoreTest, PutOpIsIdempotentByOpIdAndKeepsTheFirstCopy) {
  StoredOp op = make_op(plan_, 1);
  EXPECT_TRUE(store().put_op(op));
  StoredOp again = op;
  again.body = bytes_of("a different body");
  again.server_seq = 9;
  EXPECT_FALSE(store().put_op(again));
  EXPECT_FALSE(store().put_op(op));
  auto stored = store().op(plan_, op.op_id);
  ASSERT_TRUE(stored);
  expect_same_op(*stored, op);
  EXPECT_EQ(store().ops(plan_).size(), 1u);
  EXPECT_FALSE(store().op(plan_, OpId::random()));
}

TEST_F(LocalStoreTest, SameOpIdInAnotherPlanIsAnotherOp) {
  const PlanId other = PlanId::random();
  store().put_plan(other, "other");
  StoredOp op = make_op(plan_, 1);
  ASSERT_TRUE(store().put_op(op));
  op.plan = other;
  EXPECT_TRUE(store().put_op(op));
  EXPECT_EQ(store().ops(plan_).size(), 1u);
  EXPECT_EQ(store().ops(other).size(), 1u);
}

TEST_F(LocalStoreTest, OpsArePagedInArrivalOrder) {
  const PlanId other = PlanId::random();
  store().put_plan(other, "other");
  std::vector<StoredOp> put;
  for (std::uint64_t i = 1; i <= 25; ++i) {
    // Arrival order, not author order: sequence numbers are deliberately shuffled.
    put.push_back(make_op(plan_, (i * 7) % 25 + 1));
    ASSERT_TRUE(store().put_op(put.back()));
    ASSERT_TRUE(store().put_op(make_op(other, i)));
  }
  std::vector<StoredOp> read;
  std::uint64_t after = 0;
  for (;;) {
    auto page = store().ops(plan_, after, 10);
    if (page.empty()) break;
    EXPECT_LE(page.size(), 10u);
    after = page.back().local_index;
    read.insert(read.end(), page.begin(), page.end());
  }
  ASSERT_EQ(read.size(), put.size());
  for (std::size_t i = 0; i < read.size(); ++i) expect_same_op(read[i], put[i]);
  EXPECT_TRUE(store().ops(plan_, 0, 0).empty());
  EXPECT_TRUE(store().ops(plan_, std::numeric_limits<std::uint64_t>::max()).empty());
}

TEST_F(LocalStoreTest, EmptyHeaderBodyAndStateRoundTrip) {
  StoredOp op = make_op(plan_, 1);
  op.header.clear();
  op.body.clear();
  ASSERT_TRUE(store().put_op(op));
  expect_same_op(*store().op(plan_, op.op_id), op);
  store().save_plan_state(plan_, {});
  auto state = store().load_plan_state(plan_);
  ASSERT_TRUE(state);
  EXPECT_TRUE(state->empty());
}

TEST_F(LocalStoreTest, OutboxSurvivesReopenInAuthoringOrder) {
  std::vector<StoredOp> ops;
  for (std::uint64_t i = 1; i <= 4; ++i) {
    ops.push_back(make_op(plan_, i));
    ASSERT_TRUE(store().put_op(ops.back()));
  }
  // Queued in an order other than the rows' order.
  for (int i : {2, 0, 3}) store().outbox_add(plan_, ops[i].op_id);
  store().outbox_add(plan_, ops[0].op_id);  // again: keeps its place
  const std::vector<OpId> expected{ops[2].op_id, ops[0].op_id, ops[3].op_id};
  EXPECT_EQ(store().outbox(plan_), expected);

  reopen();
  EXPECT_EQ(store().outbox(plan_), expected);
  EXPECT_EQ(ids_of(store().outbox_ops(plan_)), expected);
  EXPECT_EQ(ids_of(store().outbox_ops(plan_, 2)), (std::vector<OpId>{expected[0], expected[1]}));

  store().outbox_remove(plan_, ops[0].op_id);
  store().outbox_remove(plan_, ops[0].op_id);  // not queued: nothing happens
  store().outbox_add(plan_, ops[1].op_id);
  EXPECT_EQ(store().outbox(plan_), (std::vector<OpId>{ops[2].op_id, ops[3].op_id, ops[1].op_id}));

  auto e =
      expect_sync_error([&] { store().outbox_add(plan_, OpId::random()); }, SyncErrorCode::kStore);
  EXPECT_NE(std::string(e.what()).find("put_op comes before outbox_add"), std::string::npos);
}

TEST_F(LocalStoreTest, ReplaceOpBodyKeepsItsPlaceAckAndOutboxEntry) {
  StoredOp first = make_op(plan_, 1);
  StoredOp op = make_op(plan_, 2);
  ASSERT_TRUE(store().put_op(first));
  ASSERT_TRUE(store().put_op(op));
  store().outbox_add(plan_, op.op_id);
  const auto before = *store().op(plan_, op.op_id);

  ASSERT_TRUE(store().replace_op_body(plan_, op.op_id, bytes_of("header epoch 2"),
                                      bytes_of("body sealed under epoch 2")));
  const auto after = *store().op(plan_, op.op_id);
  EXPECT_EQ(after.header, bytes_of("header epoch 2"));
  EXPECT_EQ(after.body, bytes_of("body sealed under epoch 2"));
  EXPECT_EQ(after.local_index, before.local_index);
  EXPECT_EQ(after.author_seq, before.author_seq);
  EXPECT_EQ(store().outbox(plan_), std::vector<OpId>{op.op_id});
  EXPECT_EQ(ids_of(store().ops(plan_)), (std::vector<OpId>{first.op_id, op.op_id}));
  EXPECT_FALSE(store().replace_op_body(plan_, OpId::random(), {}, {}));
}

TEST_F(LocalStoreTest, ServerAckSetsTheServerSequence) {
  StoredOp op = make_op(plan_, 1);
  ASSERT_TRUE(store().put_op(op));
  EXPECT_EQ(store().op(plan_, op.op_id)->server_seq, 0u);
  EXPECT_TRUE(store().set_server_seq(plan_, op.op_id, 17));
  EXPECT_EQ(store().op(plan_, op.op_id)->server_seq, 17u);
  EXPECT_FALSE(store().set_server_seq(plan_, OpId::random(), 18));
}

TEST_F(LocalStoreTest, CursorsArePerPlanAndSurviveReopen) {
  const PlanId other = PlanId::random();
  store().put_plan(other, "other");
  EXPECT_EQ(store().cursor(plan_), 0u);
  store().set_cursor(plan_, 10);
  store().set_cursor(other, 3);
  store().set_cursor(plan_, 12);
  reopen();
  EXPECT_EQ(store().cursor(plan_), 12u);
  EXPECT_EQ(store().cursor(other), 3u);
  EXPECT_EQ(store().cursor(PlanId::random()), 0u);
}

TEST_F(LocalStoreTest, WritesForAPlanThatIsNotStoredAreRefusedClearly) {
  const PlanId unknown = PlanId::random();
  auto e = expect_sync_error([&] { store().put_op(make_op(unknown, 1)); }, SyncErrorCode::kStore);
  EXPECT_NE(std::string(e.what()).find("put_plan comes first"), std::string::npos) << e.what();
  expect_sync_error([&] { store().set_cursor(unknown, 1); }, SyncErrorCode::kStore);
  expect_sync_error([&] { store().save_plan_state(unknown, {}); }, SyncErrorCode::kStore);
  expect_sync_error([&] { store().put_envelope(unknown, "notes", 1, {}); }, SyncErrorCode::kStore);
  expect_sync_error([&] { store().put_membership_entry(unknown, 0, {}); }, SyncErrorCode::kStore);
}

TEST_F(LocalStoreTest, NumbersAboveTheSqliteRangeAreRefused) {
  StoredOp op = make_op(plan_, std::numeric_limits<std::uint64_t>::max());
  expect_sync_error([&] { store().put_op(op); }, SyncErrorCode::kTooLarge);
  expect_sync_error([&] { store().set_cursor(plan_, std::uint64_t{1} << 63); },
                    SyncErrorCode::kTooLarge);
  EXPECT_FALSE(store().section_key(plan_, "notes", std::numeric_limits<std::uint64_t>::max()));
  StoredOp largest = make_op(plan_, std::numeric_limits<std::int64_t>::max());
  ASSERT_TRUE(store().put_op(largest));
  EXPECT_EQ(store().op(plan_, largest.op_id)->author_seq,
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()));
}

TEST_F(LocalStoreTest, TransactionRollsBackInItsDestructor) {
  const PlanId other = PlanId::random();
  StoredOp op = make_op(plan_, 1);
  {
    auto tx = store().begin();
    store().put_plan(other, "never committed");
    ASSERT_TRUE(store().put_op(op));
    store().set_cursor(plan_, 99);
    // Inside the transaction the writes are visible.
    EXPECT_TRUE(store().op(plan_, op.op_id));
    EXPECT_EQ(store().cursor(plan_), 99u);
  }
  EXPECT_FALSE(store().op(plan_, op.op_id));
  EXPECT_EQ(store().cursor(plan_), 0u);
  EXPECT_FALSE(store().has_plan(other));
  reopen();
  EXPECT_FALSE(store().op(plan_, op.op_id));
  EXPECT_EQ(store().plans().size(), 1u);
}

TEST_F(LocalStoreTest, RelaxedTransactionIsAtomicAndLeavesLaterWritesFullyDurable) {
  // A power cut cannot be simulated here; what can be checked is that a relaxed transaction
  // commits and rolls back like any other, and that the store is back to full durability after
  // it (a later write in its own transaction still commits and survives a reopen).
  StoredOp kept = make_op(plan_, 1);
  StoredOp dropped = make_op(plan_, 2);
  {
    auto tx = store().begin(LocalStore::Durability::kRelaxed);
    ASSERT_TRUE(store().put_op(kept));
    store().set_cursor(plan_, 7);
    tx.commit();
  }
  {
    auto tx = store().begin(LocalStore::Durability::kRelaxed);
    ASSERT_TRUE(store().put_op(dropped));
  }
  StoredOp own = make_op(plan_, 3);
  ASSERT_TRUE(store().put_op(own));
  reopen();
  EXPECT_TRUE(store().op(plan_, kept.op_id));
  EXPECT_FALSE(store().op(plan_, dropped.op_id));
  EXPECT_TRUE(store().op(plan_, own.op_id));
  EXPECT_EQ(store().cursor(plan_), 7u);
}

TEST_F(LocalStoreTest, CommittedTransactionSurvivesReopen) {
  StoredOp op = make_op(plan_, 1);
  {
    auto tx = store().begin();
    ASSERT_TRUE(store().put_op(op));
    store().outbox_add(plan_, op.op_id);
    store().set_cursor(plan_, 4);
    tx.commit();
    expect_sync_error([&] { tx.commit(); }, SyncErrorCode::kStore);
  }
  reopen();
  EXPECT_TRUE(store().op(plan_, op.op_id));
  EXPECT_EQ(store().outbox(plan_), std::vector<OpId>{op.op_id});
  EXPECT_EQ(store().cursor(plan_), 4u);
}

TEST_F(LocalStoreTest, FailedWriteInsideATransactionUndoesOnlyItself) {
  StoredOp good = make_op(plan_, 1);
  {
    auto tx = store().begin();
    ASSERT_TRUE(store().put_op(good));
    store().put_membership_entry(plan_, 0, bytes_of("e0"));
    expect_sync_error([&] { store().put_op(make_op(PlanId::random(), 2)); }, SyncErrorCode::kStore);
    expect_sync_error([&] { store().put_membership_entry(plan_, 5, bytes_of("e5")); },
                      SyncErrorCode::kMembershipInvalid);
    store().set_cursor(plan_, 1);
    tx.commit();
  }
  reopen();
  EXPECT_EQ(ids_of(store().ops(plan_)), std::vector<OpId>{good.op_id});
  EXPECT_EQ(store().membership(plan_), std::vector<Bytes>{bytes_of("e0")});
  EXPECT_EQ(store().cursor(plan_), 1u);
}

TEST_F(LocalStoreTest, OnlyOneTransactionAtATime) {
  {
    auto tx = store().begin();
    expect_sync_error([&] { (void)store().begin(); }, SyncErrorCode::kStore);
    auto moved = std::move(tx);
    store().set_cursor(plan_, 2);
    moved.commit();
  }
  auto tx = store().begin();  // the first one is over
  tx.commit();
  EXPECT_EQ(store().cursor(plan_), 2u);
}

TEST_F(LocalStoreTest, MembershipEntriesAreContiguousAndNeverRewritten) {
  EXPECT_TRUE(store().put_membership_entry(plan_, 0, bytes_of("genesis")));
  EXPECT_TRUE(store().put_membership_entry(plan_, 1, bytes_of("grant")));
  EXPECT_FALSE(store().put_membership_entry(plan_, 1, bytes_of("forged grant")));
  auto e = expect_sync_error([&] { store().put_membership_entry(plan_, 3, bytes_of("gap")); },
                             SyncErrorCode::kMembershipInvalid);
  EXPECT_NE(std::string(e.what()).find("gap"), std::string::npos);
  EXPECT_TRUE(store().put_membership_entry(plan_, 2, bytes_of("revoke")));
  reopen();
  EXPECT_EQ(store().membership(plan_),
            (std::vector<Bytes>{bytes_of("genesis"), bytes_of("grant"), bytes_of("revoke")}));
  EXPECT_TRUE(store().membership(PlanId::random()).empty());
}

TEST_F(LocalStoreTest, EnvelopesAndSectionKeysByEpoch) {
  store().put_envelope(plan_, "risk", 2, bytes_of("risk e2"));
  store().put_envelope(plan_, "health", 1, bytes_of("health e1 (old)"));
  store().put_envelope(plan_, "health", 1, bytes_of("health e1"));
  store().put_envelope(plan_, "health", 3, bytes_of("health e3"));
  EXPECT_EQ(store().envelope(plan_, "health", 1), bytes_of("health e1"));
  EXPECT_FALSE(store().envelope(plan_, "health", 2));
  EXPECT_EQ(store().envelopes(plan_),
            (std::vector<StoredEnvelope>{{"health", 1, bytes_of("health e1")},
                                         {"health", 3, bytes_of("health e3")},
                                         {"risk", 2, bytes_of("risk e2")}}));

  const auto k1 = crypto::SectionKey::generate();
  const auto k3 = crypto::SectionKey::generate();
  store().put_section_key(plan_, "health", 1, k1);
  store().put_section_key(plan_, "health", 3, k3);
  reopen();
  EXPECT_TRUE(*store().section_key(plan_, "health", 1) == k1);
  EXPECT_TRUE(*store().section_key(plan_, "health", 3) == k3);
  EXPECT_FALSE(store().section_key(plan_, "health", 2));
  EXPECT_FALSE(store().section_key(plan_, "risk", 1));
}

TEST_F(LocalStoreTest, OutgoingEnvelopesWaitInOrderAndSurviveReopen) {
  const PlanId other = PlanId::random();
  store().put_plan(other, "other");
  const std::uint64_t a = store().add_outgoing_envelope(plan_, bytes_of("for the tablet"));
  const std::uint64_t b = store().add_outgoing_envelope(plan_, bytes_of("for the nurse"));
  const std::uint64_t c = store().add_outgoing_envelope(other, bytes_of("other plan"));
  EXPECT_LT(a, b);
  reopen();
  EXPECT_EQ(store().outgoing_envelopes(plan_),
            (std::vector<OutgoingEnvelope>{{a, bytes_of("for the tablet"), std::nullopt},
                                           {b, bytes_of("for the nurse"), std::nullopt}}));
  store().remove_outgoing_envelope(plan_, a);
  store().remove_outgoing_envelope(plan_, c);  // another plan's id: nothing happens here
  store().remove_outgoing_envelope(plan_, 12345);
  EXPECT_EQ(store().outgoing_envelopes(plan_),
            (std::vector<OutgoingEnvelope>{{b, bytes_of("for the nurse"), std::nullopt}}));
  EXPECT_EQ(store().outgoing_envelopes(other).size(), 1u);
  expect_sync_error([&] { store().add_outgoing_envelope(PlanId::random(), bytes_of("x")); },
                    SyncErrorCode::kStore);
}

TEST_F(LocalStoreTest, OutgoingEnvelopeIdsAreNeverReused) {
  // An acknowledgement that arrives late names an id; it must never name a newer envelope.
  const std::uint64_t a = store().add_outgoing_envelope(plan_, bytes_of("first"));
  store().remove_outgoing_envelope(plan_, a);
  reopen();
  EXPECT_GT(store().add_outgoing_envelope(plan_, bytes_of("second")), a);
}

TEST_F(LocalStoreTest, TruncatedMembershipTakesNewEntriesFromThere) {
  for (std::uint64_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(store().put_membership_entry(plan_, i, bytes_of("e" + std::to_string(i))));
  }
  store().truncate_membership(plan_, 2);
  EXPECT_EQ(store().membership(plan_), (std::vector<Bytes>{bytes_of("e0"), bytes_of("e1")}));
  EXPECT_TRUE(store().put_membership_entry(plan_, 2, bytes_of("theirs")));
  EXPECT_EQ(store().membership(plan_).back(), bytes_of("theirs"));
  store().truncate_membership(plan_, 10);  // past the end: nothing to remove
  store().truncate_membership(plan_, std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(store().membership(plan_).size(), 3u);
}

TEST_F(LocalStoreTest, SectionDigestsKeepTheirSequenceAndSurviveReopen) {
  EXPECT_EQ(store().digest_seq(plan_), 0u);
  EXPECT_TRUE(store().section_digests(plan_).empty());
  SectionDigest health, notes;
  health.add(crypto::blake2b(crypto::as_bytes("op 1")));
  notes.add(crypto::blake2b(crypto::as_bytes("op 2")));
  {
    auto tx = store().begin();
    store().set_cursor(plan_, 2);
    store().put_section_digests(plan_, 2, {{"notes", notes}, {"health", health}});
    tx.commit();
  }
  health.add(crypto::blake2b(crypto::as_bytes("op 3")));
  store().put_section_digests(plan_, 3, {{"health", health}});  // notes keeps its digest
  reopen();
  EXPECT_EQ(store().cursor(plan_), 2u);  // the digests never move the cursor
  EXPECT_EQ(store().digest_seq(plan_), 3u);
  EXPECT_EQ(store().section_digests(plan_),
            (std::vector<StoredSectionDigest>{{"health", health}, {"notes", notes}}));
  store().clear_section_digests(plan_);
  EXPECT_EQ(store().digest_seq(plan_), 0u);
  EXPECT_TRUE(store().section_digests(plan_).empty());
  EXPECT_EQ(store().cursor(plan_), 2u);
  expect_sync_error(
      [&] {
        store().put_section_digests(PlanId::random(), 1, {{"health", health}});
      },
      SyncErrorCode::kStore);
}

TEST_F(LocalStoreTest, PlansKeepTheirOrderAndTitlesChange) {
  const PlanId second = PlanId::random();
  store().put_plan(second, "second");
  store().put_plan(plan_, "renamed");
  const auto plans = store().plans();
  ASSERT_EQ(plans.size(), 2u);
  EXPECT_EQ(plans[0], (std::pair<PlanId, std::string>{plan_, "renamed"}));
  EXPECT_EQ(plans[1], (std::pair<PlanId, std::string>{second, "second"}));
}

TEST_F(LocalStoreTest, RemovePlanRemovesEverythingOfIt) {
  StoredOp op = make_op(plan_, 1);
  ASSERT_TRUE(store().put_op(op));
  store().outbox_add(plan_, op.op_id);
  store().put_membership_entry(plan_, 0, bytes_of("e0"));
  store().put_envelope(plan_, "notes", 1, bytes_of("env"));
  store().add_outgoing_envelope(plan_, bytes_of("outgoing"));
  store().put_section_key(plan_, "notes", 1, crypto::SectionKey::generate());
  store().set_cursor(plan_, 5);
  store().put_section_digests(plan_, 5, {{"notes", SectionDigest{}}});
  store().save_plan_state(plan_, crypto::as_bytes("state"));
  store().remove_plan(plan_);

  EXPECT_FALSE(store().has_plan(plan_));
  EXPECT_TRUE(store().ops(plan_).empty());
  EXPECT_TRUE(store().outbox(plan_).empty());
  EXPECT_TRUE(store().membership(plan_).empty());
  EXPECT_TRUE(store().envelopes(plan_).empty());
  EXPECT_TRUE(store().outgoing_envelopes(plan_).empty());
  EXPECT_FALSE(store().section_key(plan_, "notes", 1));
  EXPECT_EQ(store().cursor(plan_), 0u);
  EXPECT_FALSE(store().load_plan_state(plan_));
  RawDb raw(path());
  for (const char* table : {"ops", "outbox", "membership", "envelopes", "outgoing_envelopes",
                            "section_keys", "cursors", "section_digests", "plan_states", "plans"}) {
    EXPECT_EQ(raw.scalar(std::string("SELECT count(*) FROM ") + table), "0") << table;
  }
}

TEST_F(LocalStoreTest, CheckpointEmptiesTheWal) {
  for (std::uint64_t i = 1; i <= 20; ++i) ASSERT_TRUE(store().put_op(make_op(plan_, i, 4096)));
  EXPECT_GT(fs::file_size(path().string() + "-wal"), 0u);
  store().checkpoint();
  EXPECT_EQ(fs::file_size(path().string() + "-wal"), 0u);
  EXPECT_EQ(store().ops(plan_).size(), 20u);
}

}  // namespace
}  // namespace kith::sync::store_test
