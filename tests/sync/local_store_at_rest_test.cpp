// LocalStore at rest and across a crash: nothing secret reaches the files in the clear, a wrong
// key or a moved sealed value never yields plaintext, and a process killed mid-transaction
// leaves exactly the committed transactions.
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
#include "kith/sync/local_store.hpp"
#include "local_store_fixtures.hpp"

namespace kith::sync::store_test {
namespace {

// ---------------------------------------------------------------------------------------------
// (1) At rest

TEST(LocalStoreAtRest, CanaryNeverReachesTheFilesInTheClear) {
  TempDir dir;
  const fs::path path = dir / "kith.db";
  const auto storage_key = crypto::SectionKey::generate();
  const PlanId plan = PlanId::random();

  const std::string canary = "CANARY-8f3e2b7c";
  const std::string title = canary + "-title: Mrs Adebayo's support plan";
  const std::string state_text = canary + "-state: takes metformin 500mg at 08:00";
  // A section key whose 32 bytes are themselves canary text.
  const std::string key_text = canary + "-section-key-012!";
  ASSERT_EQ(key_text.size(), crypto::kSectionKeySize);
  const auto section_key = crypto::SectionKey::parse(crypto::as_bytes(key_text));
  // Control: op bodies are stored as they arrive (already sealed under a section key), so this
  // text must be found — proof that the scan really reads what SQLite wrote.
  const std::string control = "VISIBLE-CONTROL-op-body-5d21";

  auto scan = [&](const char* when) {
    std::size_t files = 0;
    bool control_seen = false;
    for (const auto& file : store_files(path)) {
      const Bytes bytes = read_file(file);
      ++files;
      EXPECT_FALSE(contains(bytes, crypto::as_bytes(canary))) << file << " " << when;
      EXPECT_FALSE(contains(bytes, section_key.secret().view())) << file << " " << when;
      control_seen = control_seen || contains(bytes, crypto::as_bytes(control));
    }
    EXPECT_GE(files, 1u);
    EXPECT_TRUE(control_seen) << when;
  };

  {
    LocalStore store(path, storage_key);
    store.put_plan(plan, title);
    store.save_plan_state(plan, crypto::as_bytes(state_text));
    store.put_section_key(plan, "health", 1, section_key);
    StoredOp op = make_op(plan, 1);
    op.body = bytes_of(control);
    ASSERT_TRUE(store.put_op(op));
    // While open, the writes are in the WAL: scan it as it is.
    ASSERT_TRUE(fs::exists(path.string() + "-wal"));
    scan("while open");
  }
  // Closing checkpoints the WAL into the database file.
  scan("after close");
  EXPECT_FALSE(fs::exists(path.string() + "-wal"));

  // And the same store gives everything back.
  LocalStore store(path, storage_key);
  ASSERT_EQ(store.plans().size(), 1u);
  EXPECT_EQ(store.plans()[0].second, title);
  auto state = store.load_plan_state(plan);
  ASSERT_TRUE(state);
  EXPECT_EQ(std::string(state->view().begin(), state->view().end()), state_text);
  auto key = store.section_key(plan, "health", 1);
  ASSERT_TRUE(key);
  EXPECT_TRUE(*key == section_key);
}

TEST(LocalStoreAtRest, WrongStorageKeyIsRefusedAtOpenWithoutTouchingTheFile) {
  TempDir dir;
  const fs::path path = dir / "kith.db";
  const auto storage_key = crypto::SectionKey::generate();
  const PlanId plan = PlanId::random();
  {
    LocalStore store(path, storage_key);
    store.put_plan(plan, "plan");
    store.save_plan_state(plan, crypto::as_bytes("state"));
  }
  const Bytes before = read_file(path);

  auto e = expect_sync_error([&] { LocalStore store(path, crypto::SectionKey::generate()); },
                             SyncErrorCode::kStore);
  EXPECT_NE(std::string(e.what()).find("storage key does not open this store"), std::string::npos)
      << e.what();
  EXPECT_EQ(read_file(path), before);

  LocalStore store(path, storage_key);
  auto state = store.load_plan_state(plan);
  ASSERT_TRUE(state);
  EXPECT_EQ(state->view().size(), 5u);
}

TEST(LocalStoreAtRest, ValueSealedUnderAnotherKeyNeverYieldsGarbage) {
  TempDir dir;
  const fs::path path = dir / "kith.db";
  const auto storage_key = crypto::SectionKey::generate();
  const auto other_key = crypto::SectionKey::generate();
  const PlanId plan = PlanId::random();
  { LocalStore(path, storage_key).put_plan(plan, "plan"); }
  {
    // Rows sealed exactly as the store seals them (right table, plan and row key), but under
    // another device's storage key.
    RawDb raw(path);
    const Bytes plan_bytes(plan.bytes().begin(), plan.bytes().end());
    raw.rows("INSERT INTO plan_states (plan_id, state_sealed) VALUES (?1, ?2)",
             {plan_bytes, crypto::seal(other_key, crypto::as_bytes("state"),
                                       documented_ad("plan_states", plan, {}))});
    raw.rows(
        "INSERT INTO section_keys (plan_id, section, epoch, key_sealed) "
        "VALUES (?1, 'risk', 3, ?2)",
        {plan_bytes,
         crypto::seal(other_key, crypto::SectionKey::generate().secret().view(),
                      documented_ad("section_keys", plan, documented_section_row_key("risk", 3)))});
  }
  LocalStore store(path, storage_key);
  auto e = expect_sync_error([&] { (void)store.load_plan_state(plan); }, SyncErrorCode::kStore);
  EXPECT_NE(std::string(e.what()).find("plan state of plan " + plan.hex() + " does not open"),
            std::string::npos)
      << e.what();
  expect_sync_error([&] { (void)store.section_key(plan, "risk", 3); }, SyncErrorCode::kStore);
}

TEST(LocalStoreAtRest, StoreWithoutItsKeyCheckIsRefusedAsDamaged) {
  TempDir dir;
  const fs::path path = dir / "kith.db";
  const auto storage_key = crypto::SectionKey::generate();
  { LocalStore(path, storage_key).put_plan(PlanId::random(), "plan"); }
  // Without the check, any key would get past the open; the store refuses instead.
  RawDb(path).exec("DELETE FROM meta WHERE name = 'key_check'");
  auto e = expect_sync_error([&] { LocalStore store(path, storage_key); }, SyncErrorCode::kStore);
  EXPECT_NE(std::string(e.what()).find("damaged"), std::string::npos) << e.what();
}

TEST(LocalStoreAtRest, SealedValueMovedToAnotherRowDoesNotOpen) {
  TempDir dir;
  const fs::path path = dir / "kith.db";
  const auto storage_key = crypto::SectionKey::generate();
  const PlanId a = PlanId::random();
  const PlanId b = PlanId::random();
  {
    LocalStore store(path, storage_key);
    store.put_plan(a, "A");
    store.put_plan(b, "B");
    store.save_plan_state(a, crypto::as_bytes("state of A"));
    store.save_plan_state(b, crypto::as_bytes("state of B"));
    store.put_section_key(a, "health", 1, crypto::SectionKey::generate());
  }
  {
    RawDb raw(path);
    // A's state into B's row; A's epoch-1 health key relabelled as epoch 2 and as "risk".
    raw.rows(
        "UPDATE plan_states SET state_sealed = "
        "(SELECT state_sealed FROM plan_states WHERE plan_id = ?1) WHERE plan_id = ?2",
        {Bytes(a.bytes().begin(), a.bytes().end()), Bytes(b.bytes().begin(), b.bytes().end())});
    raw.exec(
        "INSERT INTO section_keys (plan_id, section, epoch, key_sealed) "
        "SELECT plan_id, 'health', 2, key_sealed FROM section_keys WHERE epoch = 1;"
        "INSERT INTO section_keys (plan_id, section, epoch, key_sealed) "
        "SELECT plan_id, 'risk', 1, key_sealed FROM section_keys WHERE epoch = 1 AND "
        "section = 'health'");
  }
  LocalStore store(path, storage_key);
  EXPECT_TRUE(store.load_plan_state(a));
  auto e = expect_sync_error([&] { (void)store.load_plan_state(b); }, SyncErrorCode::kStore);
  EXPECT_NE(std::string(e.what()).find("does not open"), std::string::npos) << e.what();
  EXPECT_TRUE(store.section_key(a, "health", 1));
  expect_sync_error([&] { (void)store.section_key(a, "health", 2); }, SyncErrorCode::kStore);
  expect_sync_error([&] { (void)store.section_key(a, "risk", 1); }, SyncErrorCode::kStore);
}

TEST(LocalStoreAtRest, FilesAreReadableByTheOwnerOnly) {
  TempDir dir;
  const fs::path path = dir / "kith.db";
  LocalStore store(path, crypto::SectionKey::generate());
  store.put_plan(PlanId::random(), "plan");
  for (const auto& file : store_files(path)) {
    struct stat st {};
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << file;
  }
}

// ---------------------------------------------------------------------------------------------
// (2) Crash mid-apply

TEST(LocalStoreCrash, KilledMidTransactionKeepsExactlyTheCommittedBatch) {
  TempDir dir;
  const fs::path path = dir / "kith.db";
  const auto storage_key = crypto::SectionKey::generate();
  const PlanId plan = PlanId::random();

  std::vector<StoredOp> batch_a;
  for (std::uint64_t i = 1; i <= 5; ++i) batch_a.push_back(make_op(plan, i));
  // Batch B's half is larger than the store's page cache (8 MiB), so SQLite spills uncommitted
  // pages into the WAL before the crash: recovery must ignore frames that no commit record covers.
  std::vector<StoredOp> batch_b;
  for (std::uint64_t i = 6; i <= 6 + 2 * 640; ++i) batch_b.push_back(make_op(plan, i, 16 * 1024));
  const auto key_b = crypto::SectionKey::generate();

  std::fflush(nullptr);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child never returns into GoogleTest: it dies by SIGKILL mid-transaction, or exits with
    // a code the parent reports.
    try {
      LocalStore store(path, storage_key);
      {
        auto tx = store.begin();
        store.put_plan(plan, "plan");
        for (const auto& op : batch_a) {
          store.put_op(op);
          store.outbox_add(plan, op.op_id);
        }
        store.set_cursor(plan, 5);
        store.save_plan_state(plan, crypto::as_bytes("state after A"));
        tx.commit();
      }
      auto tx = store.begin();
      for (std::size_t i = 0; i < batch_b.size() / 2; ++i) {
        store.put_op(batch_b[i]);
        store.outbox_add(plan, batch_b[i].op_id);
      }
      store.set_cursor(plan, 5 + batch_b.size() / 2);
      store.save_plan_state(plan, crypto::as_bytes("state after half of B"));
      store.put_section_key(plan, "notes", 2, key_b);
      store.put_plan(plan, "renamed by B");
      ::raise(SIGKILL);  // as kill -9: no destructor, no rollback, no close
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(4);
  }

  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  ASSERT_EQ(WTERMSIG(status), SIGKILL);
  // The test exercises what it claims: uncommitted frames of B are in the WAL.
  ASSERT_TRUE(fs::exists(path.string() + "-wal"));
  // (Batch A's commit wrote a few pages; megabytes more are B's.)
  EXPECT_GT(fs::file_size(path.string() + "-wal"), 2u * 1024 * 1024);

  LocalStore store(path, storage_key);
  const auto ops = store.ops(plan, 0, 10000);
  ASSERT_EQ(ops.size(), batch_a.size());
  for (std::size_t i = 0; i < ops.size(); ++i) expect_same_op(ops[i], batch_a[i]);
  EXPECT_EQ(store.outbox(plan), ids_of(batch_a));
  EXPECT_EQ(store.cursor(plan), 5u);
  auto state = store.load_plan_state(plan);
  ASSERT_TRUE(state);
  EXPECT_EQ(std::string(state->view().begin(), state->view().end()), "state after A");
  EXPECT_FALSE(store.section_key(plan, "notes", 2));
  EXPECT_EQ(store.plans().at(0).second, "plan");
  for (const auto& op : batch_b) ASSERT_FALSE(store.op(plan, op.op_id));

  // The store carries on: all of B now goes in, after A.
  {
    auto tx = store.begin();
    for (const auto& op : batch_b) ASSERT_TRUE(store.put_op(op));
    tx.commit();
  }
  EXPECT_EQ(store.ops(plan, 0, 10000).size(), batch_a.size() + batch_b.size());
}

}  // namespace
}  // namespace kith::sync::store_test
